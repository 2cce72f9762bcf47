package openapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"

	"github.com/keygate/keygate/internal/problem"
)

// CacheControl is the Cache-Control of the served document: public, since
// it holds no secret and is the same for every caller, for five minutes,
// then revalidated by its ETag (a deployment may change it).
const CacheControl = "public, max-age=300"

// Handler serves the document, as it is now, to GET and HEAD: public,
// cacheable, with an ETag that If-None-Match revalidates (304). Build the
// document first; Handler marshals it once.
func (d *Document) Handler() (http.Handler, error) {
	body, err := d.JSON()
	if err != nil {
		return nil, err
	}
	return Serve(body), nil
}

// Serve serves body, an OpenAPI document in JSON, as Handler does.
func Serve(body []byte) http.Handler {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			problem.Write(w, problem.New(http.StatusMethodNotAllowed, "method_not_allowed",
				problem.QuoteShort(r.Method)+" is not allowed here; use GET, HEAD."))
			return
		}
		h.Set("Cache-Control", CacheControl)
		h.Set("ETag", etag)
		// Any origin may read it (a client generator, an editor): it
		// holds no secret, and no credentials are involved.
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("X-Content-Type-Options", "nosniff")
		if matches(r.Header.Values("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", length)
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}

// matches reports whether If-None-Match values name etag, weakly compared
// (RFC 9110 13.1.2), or are "*".
func matches(values []string, etag string) bool {
	for _, v := range values {
		for tag := range strings.SplitSeq(v, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == etag || tag == "*" {
				return true
			}
		}
	}
	return false
}
