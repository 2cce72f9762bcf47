package apidocs

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/testkit"
)

// get serves one request to h, with the Accept-Encoding header when
// encoding is not "".
func get(h http.Handler, method, target, encoding string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if encoding != "" {
		r.Header.Set("Accept-Encoding", encoding)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// wantStrictHeaders checks the headers every response carries.
func wantStrictHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// gunzip returns b unzipped.
func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHandlerServesThePageAndItsFiles(t *testing.T) {
	h := Handler(Config{Path: "/api/docs/", SpecURL: "/api/openapi.json", Title: "Bingo <API>"})
	assets := "/api/docs/swagger-ui-" + Version
	cases := []struct {
		path, typ, cache, encoding, contains string
	}{
		{"/api/docs", "text/html; charset=utf-8", "no-cache", "", `<main id="docs" data-spec-url="/api/openapi.json">`},
		{"/api/docs/docs.js", "text/javascript; charset=utf-8", "no-cache", "", "SwaggerUIBundle({"},
		{assets + "/swagger-ui-bundle.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "gzip", "SwaggerUIBundle"},
		{assets + "/swagger-ui.css", "text/css; charset=utf-8", "public, max-age=31536000, immutable", "gzip", ".swagger-ui"},
		{assets + "/favicon-32x32.png", "image/png", "public, max-age=31536000, immutable", "", "PNG"},
	}
	for _, c := range cases {
		w := get(h, "GET", c.path, "gzip, deflate, br")
		body := w.Body.Bytes()
		if w.Header().Get("Content-Encoding") != c.encoding {
			t.Errorf("GET %s: Content-Encoding %q, want %q", c.path, w.Header().Get("Content-Encoding"), c.encoding)
		}
		if c.encoding == "gzip" {
			body = gunzip(t, body)
			if w.Header().Get("Vary") != "Accept-Encoding" {
				t.Errorf("GET %s: Vary %q, want Accept-Encoding", c.path, w.Header().Get("Vary"))
			}
		}
		if w.Code != 200 || w.Header().Get("Content-Type") != c.typ || !bytes.Contains(body, []byte(c.contains)) {
			t.Errorf("GET %s = %d %q, want 200 %s containing %q", c.path, w.Code, w.Header().Get("Content-Type"), c.typ, c.contains)
		}
		if got := w.Header().Get("Cache-Control"); got != c.cache {
			t.Errorf("GET %s: Cache-Control %q, want %q", c.path, got, c.cache)
		}
		wantStrictHeaders(t, w)
		head := get(h, "HEAD", c.path, "gzip")
		if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Length") != w.Header().Get("Content-Length") {
			t.Errorf("HEAD %s = %d, %d bytes, Content-Length %q; want 200, no body, %q", c.path, head.Code, head.Body.Len(),
				head.Header().Get("Content-Length"), w.Header().Get("Content-Length"))
		}
	}
	page := get(h, "GET", "/api/docs", "").Body.String()
	for _, want := range []string{
		`<title>Bingo &lt;API&gt;</title>`, `src="` + assets + `/swagger-ui-bundle.js"`, `href="` + assets + `/swagger-ui.css"`,
		`src="/api/docs/docs.js"`, `href="` + assets + `/favicon-32x32.png"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

// TestPageLoadsNothingFromElsewhere: every src and href of the page is a
// path of this origin, and the page has no inline script or style.
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	page := get(Handler(Config{}), "GET", "/docs", "").Body.String()
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "/") || strings.HasPrefix(m[1], "//") {
			t.Errorf("the page refers to %q, not a path of its own origin", m[1])
		}
	}
	if strings.Contains(page, "<style") || regexp.MustCompile(`<script[^>]*>[^<]`).MatchString(page) || strings.Contains(page, "style=") {
		t.Errorf("the page has an inline script or style:\n%s", page)
	}
}

func TestHandlerDefaults(t *testing.T) {
	page := get(Handler(Config{}), "GET", "/docs", "").Body.String()
	for _, want := range []string{`data-spec-url="/openapi.json"`, `<title>API reference</title>`, `src="/docs/docs.js"`, `src="/docs/swagger-ui-` + Version + `/swagger-ui-bundle.js"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the default page lacks %s", want)
		}
	}
}

// TestVendoredFiles checks what is embedded against SHA256SUMS, which
// fetch-swagger-ui.sh wrote from the npm tarball it checked: the files
// served are swagger-ui-dist's, at VERSION, unzipped whole; and the
// licences are there.
func TestVendoredFiles(t *testing.T) {
	if !regexp.MustCompile(`^5\.\d+\.\d+$`).MatchString(Version) {
		t.Errorf("Version = %q, want a 5.x release", Version)
	}
	sums := string(mustRead(t, "static/swagger-ui/SHA256SUMS"))
	for _, name := range []string{"swagger-ui-bundle.js", "swagger-ui.css"} {
		sum := sha256.Sum256(gunzip(t, mustRead(t, "static/swagger-ui/"+name+".gz")))
		if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; !strings.Contains(sums, want) {
			t.Errorf("%s.gz unzips to sha256 %x, not the one in SHA256SUMS:\n%s", name, sum, sums)
		}
	}
	if !bytes.Contains(mustRead(t, "static/swagger-ui/LICENSE"), []byte("Apache License")) {
		t.Error("static/swagger-ui/LICENSE is not the Apache License")
	}
	for _, name := range []string{"NOTICE", "swagger-ui-bundle.js.LICENSE.txt"} {
		if len(mustRead(t, "static/swagger-ui/"+name)) == 0 {
			t.Errorf("static/swagger-ui/%s is empty", name)
		}
	}
}

// TestWithoutGzip: a client that does not take gzip gets the files
// unzipped, whole, with their length.
func TestWithoutGzip(t *testing.T) {
	h := Handler(Config{})
	path := "/docs/swagger-ui-" + Version + "/swagger-ui.css"
	zipped := get(h, "GET", path, "gzip").Body.Bytes()
	for _, encoding := range []string{"", "identity", "gzip;q=0", "br", "*;q=1, gzip;q=0", "deflate, gzip; q=0.0"} {
		w := get(h, "GET", path, encoding)
		if w.Header().Get("Content-Encoding") != "" || !bytes.Equal(w.Body.Bytes(), gunzip(t, zipped)) {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, %d bytes; want the file unzipped", encoding, w.Header().Get("Content-Encoding"), w.Body.Len())
		}
		if w.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) || w.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Content-Length %q for %d bytes, Vary %q", encoding, w.Header().Get("Content-Length"), w.Body.Len(), w.Header().Get("Vary"))
		}
		head := get(h, "HEAD", path, encoding)
		if head.Body.Len() != 0 || head.Header().Get("Content-Length") != w.Header().Get("Content-Length") {
			t.Errorf("HEAD, Accept-Encoding %q: %d bytes, Content-Length %q", encoding, head.Body.Len(), head.Header().Get("Content-Length"))
		}
	}
	for _, encoding := range []string{"gzip", "GZIP", "x-gzip", "*", "br;q=1, gzip;q=0.5", "identity, *;q=0.1"} {
		if w := get(h, "GET", path, encoding); w.Header().Get("Content-Encoding") != "gzip" {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want gzip", encoding, w.Header().Get("Content-Encoding"))
		}
	}
}

func TestHandlerRedirectsAndRefusesOtherPathsAndMethods(t *testing.T) {
	h := Handler(Config{})
	if w := get(h, "GET", "/docs/", ""); w.Code != 301 || w.Header().Get("Location") != "/docs" {
		t.Errorf("GET /docs/ = %d Location %q, want 301 to /docs", w.Code, w.Header().Get("Location"))
	}
	for _, path := range []string{"/docs//", "/docs/nope.js", "/docs/static/docs.js", "/docs/docs.html", "/docs/swagger-ui-bundle.js",
		"/docs/swagger-ui-0.0.1/swagger-ui-bundle.js", "/docs/swagger-ui-" + Version + "/swagger-ui-bundle.js.gz",
		"/docs/swagger-ui-" + Version + "/LICENSE", "/docsx", "/"} {
		w := get(h, "GET", path, "")
		if w.Code != 404 || testkit.Problem(t, w).Code != "not_found" {
			t.Errorf("GET %s = %d %s, want 404 not_found", path, w.Code, w.Body)
		}
		wantStrictHeaders(t, w)
	}
	for _, c := range []struct{ method, path string }{{"POST", "/docs"}, {"PUT", "/docs"}, {"DELETE", "/docs/docs.js"}, {"POST", "/docs/"}} {
		w := get(h, c.method, c.path, "")
		if c.path == "/docs/" {
			if w.Code != 404 {
				t.Errorf("%s %s = %d, want 404", c.method, c.path, w.Code)
			}
			continue
		}
		if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" || testkit.Problem(t, w).Code != "method_not_allowed" {
			t.Errorf("%s %s = %d Allow %q %s, want 405 Allow GET, HEAD", c.method, c.path, w.Code, w.Header().Get("Allow"), w.Body)
		}
		wantStrictHeaders(t, w)
	}
}

// mustRead returns a file of the package's directory.
func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkHandler: building the handler, which the function's start pays
// once (BENCHMARKS.md, issue 33).
func BenchmarkHandler(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Handler(Config{})
	}
}
