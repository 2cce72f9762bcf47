package openapitest

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"strings"

	liberrors "github.com/pb33f/libopenapi-validator/errors"

	"github.com/keygate/keygate/internal/logging"
)

// Report reports to t each of Mismatches, with the method, path, status
// and a start of the answer's body, every key in it redacted.
func (c *Contract) Report(t Reporter, r *http.Request, body []byte, resp *http.Response) {
	t.Helper()
	ms := c.Mismatches(r, body, resp)
	if len(ms) == 0 {
		return
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(got))
	const excerpt = 300
	if len(got) > excerpt {
		got = append(got[:excerpt:excerpt], "..."...)
	}
	t.Errorf("openapi: %s %s answered %d, not as the document says:\n\t%s\n\tbody: %s",
		r.Method, r.URL.RequestURI(), resp.StatusCode, strings.Join(ms, "\n\t"), logging.RedactKeys(string(got)))
}

// Mismatches checks one exchange against the document: r, whose body was
// body, answered resp. See the package's doc for the rules.
func (c *Contract) Mismatches(r *http.Request, body []byte, resp *http.Response) []string {
	vs := c.routed
	req := clone(r, body)
	if req.Method == http.MethodHead { // as GET, without the body
		req.Method = http.MethodGet
	}
	ok, reqErrs := vs.full.ValidateHttpRequestSync(req)
	if unrouted(reqErrs) {
		if c.unrouted == nil {
			return []string{fmt.Sprintf("no operation for %s %s, and no Options.Unrouted", req.Method, req.URL.Path)}
		}
		vs = *c.unrouted
		req = clone(req, body)
		req.URL.Path, req.URL.RawPath = unroutedPath, ""
	}
	v := vs.full
	if r.Method == http.MethodHead {
		v = vs.noBody
	}
	var ms []string
	if !ok && !unrouted(reqErrs) && resp.StatusCode < 400 {
		ms = append(ms, "the request is malformed, yet it was not refused: "+messages(reqErrs))
	}
	resp.Request = req
	if ok, errs := v.ValidateHttpResponse(req, resp); !ok {
		for _, e := range errs {
			ms = append(ms, message(e))
		}
	}
	return ms
}

// unrouted is whether errs say that the request has no operation.
func unrouted(errs []*liberrors.ValidationError) bool {
	for _, e := range errs {
		if e.IsPathMissingError() || e.IsOperationMissingError() {
			return true
		}
	}
	return false
}

// clone is r with body to read again.
func clone(r *http.Request, body []byte) *http.Request {
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader(body))
	return c
}

// messages joins errs' messages.
func messages(errs []*liberrors.ValidationError) string {
	s := make([]string, len(errs))
	for i, e := range errs {
		s[i] = message(e)
	}
	return strings.Join(s, "; ")
}

// message is e's message, its reason and each schema failure, with where
// it is.
func message(e *liberrors.ValidationError) string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Reason != "" && e.Reason != e.Message {
		b.WriteString(": " + e.Reason)
	}
	for _, f := range e.SchemaValidationErrors {
		fmt.Fprintf(&b, " [%s: %s]", cmp.Or(f.FieldPath, f.KeywordLocation), f.Reason)
	}
	return b.String()
}
