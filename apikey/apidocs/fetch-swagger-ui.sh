#!/usr/bin/env bash
# Re-fetches the Swagger UI that package apidocs embeds, from npm, at the
# pinned version: checks the tarball against the integrity npm published
# for it, and writes into static/swagger-ui/ the two files the page loads,
# gzipped reproducibly (gzip -9n: no name, no time), with their licences
# and SHA256SUMS of the uncompressed files, which apidocs' TestVendoredFiles
# checks against what is embedded.
#
#   apikey/apidocs/fetch-swagger-ui.sh
#
# To upgrade: change VERSION and INTEGRITY (npm view swagger-ui-dist@X
# dist.integrity), run it, and run apidocs' tests and the browser test
# (go test ./apikey/apidocs/ . -run Docs).
set -euo pipefail
cd "$(dirname "$0")"

VERSION=5.36.0
INTEGRITY='sha512-Lt6/Kb0gXmLdiabLhvso4VdJP9V7qJWB0zh0gzeXUV3+CMOTzMmvpJRSXN7EAjfwixwmoi9ezDbLHiexC7lA9A=='

for tool in npm tar gzip sha256sum sha512sum xxd base64; do
  command -v "$tool" >/dev/null || { echo "fetch-swagger-ui.sh: $tool is not installed" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tgz="$tmp/swagger-ui-dist-$VERSION.tgz"
got="sha512-$(sha512sum "$tgz" | cut -d' ' -f1 | xxd -r -p | base64 -w0)"
if [[ $got != "$INTEGRITY" ]]; then
  echo "fetch-swagger-ui.sh: swagger-ui-dist@$VERSION is $got, want $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$tmp"

out=static/swagger-ui
rm -rf "$out"
mkdir -p "$out"
for f in swagger-ui-bundle.js swagger-ui.css; do
  gzip -9n <"$tmp/package/$f" >"$out/$f.gz"
done
for f in LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt favicon-32x32.png; do
  cp "$tmp/package/$f" "$out/"
done
(cd "$tmp/package" && sha256sum swagger-ui-bundle.js swagger-ui.css) >"$out/SHA256SUMS"
echo "$VERSION" >"$out/VERSION"
echo "swagger-ui-dist@$VERSION ($INTEGRITY) in apikey/apidocs/$out"
