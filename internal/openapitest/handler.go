package openapitest

import (
	"bytes"
	"io"
	"net/http"
)

// Reporter is where mismatches go: a *testing.T, or a recording stand-in
// in a test that a mismatch is found.
type Reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// Handler returns h behind the contract: each request is served by h, as
// it came, and then checked with its answer (Mismatches); each mismatch is
// reported to t.
func (c *Contract) Handler(t Reporter, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			var err error
			if body, err = io.ReadAll(r.Body); err != nil {
				t.Errorf("openapi: %s %s: reading the request's body: %v", r.Method, r.URL.RequestURI(), err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		cw := &capture{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		if cw.truncated {
			t.Errorf("openapi: %s %s answered %d with more than %d bytes: not checked", r.Method, r.URL.RequestURI(), cw.status, maxCaptured)
			return
		}
		c.Report(t, r, body, cw.response(r))
	})
}
