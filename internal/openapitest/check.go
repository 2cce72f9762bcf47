package openapitest

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"path"
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
	req := clone(r, body)
	dropEmptyQuery(req)
	ok, reqErrs := c.routed.full.ValidateHttpRequestSync(req)
	if r.Method == http.MethodHead && unrouted(reqErrs) { // served as GET, without the body
		req = clone(r, body)
		dropEmptyQuery(req)
		req.Method = http.MethodGet
		ok, reqErrs = c.routed.full.ValidateHttpRequestSync(req)
	}
	vs := c.routed
	var ms []string
	switch {
	case unrouted(reqErrs) || !clean(req.URL.Path):
		if c.unrouted == nil {
			return []string{fmt.Sprintf("no operation for %s %s, and no Options.Unrouted", req.Method, req.URL.Path)}
		}
		vs = *c.unrouted
		req = clone(req, body)
		req.URL.Path, req.URL.RawPath = unroutedPath, ""
	case !ok && resp.StatusCode < 400:
		ms = append(ms, "the request is malformed, yet it was not refused: "+messages(reqErrs))
	}
	v := vs.full
	if r.Method == http.MethodHead { // never a body
		v = vs.noBody
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

// clean is whether p is a path as the document's are: no empty, "." or
// ".." segment, no trailing "/" but the root's. The validator finds the
// operation of /v1/keys for //v1/keys and /v1/keys/, which a server need
// not route there (and keygate does not).
func clean(p string) bool {
	return p == "/" || (path.Clean(p) == p && !strings.HasSuffix(p, "/"))
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

// dropEmptyQuery removes the query parameters given empty (?limit=) from
// req before it is checked: the function reads its parameters with
// url.Values.Get, for which an empty value is the parameter absent (its
// default), and OpenAPI has no way to say so of an integer or a date.
func dropEmptyQuery(req *http.Request) {
	q := req.URL.Query()
	dropped := false
	for name, vs := range q {
		if len(vs) == 1 && vs[0] == "" {
			q.Del(name)
			dropped = true
		}
	}
	if dropped {
		req.URL.RawQuery = q.Encode()
	}
}
