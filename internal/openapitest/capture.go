package openapitest

import (
	"bytes"
	"io"
	"net/http"
)

// maxCaptured bounds the answer kept for checking; a longer one is
// reported, not checked.
const maxCaptured = 4 << 20 // Swagger UI's bundle, unzipped, is 1.5 MB

// capture passes an answer on to the client and keeps a copy of it: the
// status and headers as they were sent, and the body.
type capture struct {
	http.ResponseWriter
	status    int
	header    http.Header
	body      bytes.Buffer
	truncated bool
}

func (c *capture) WriteHeader(status int) {
	if c.status == 0 && status >= 200 { // 1xx answers are interim
		c.status = status
		c.header = c.ResponseWriter.Header().Clone()
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.body.Len() == 0 && len(p) > 0 {
		c.sniff(p)
	}
	if n := maxCaptured - c.body.Len(); n < len(p) {
		c.body.Write(p[:max(n, 0)])
		c.truncated = true
	} else {
		c.body.Write(p)
	}
	return c.ResponseWriter.Write(p)
}

// sniff sets the Content-Type that net/http's server sends with a body
// whose handler set none.
func (c *capture) sniff(p []byte) {
	if _, ok := c.header["Content-Type"]; !ok {
		c.header.Set("Content-Type", http.DetectContentType(p))
	}
}

// Unwrap lets http.ResponseController reach the writer beneath.
func (c *capture) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// response is the answer as the client received it, to r.
func (c *capture) response(r *http.Request) *http.Response {
	if c.status == 0 { // nothing written: net/http sends 200
		c.status = http.StatusOK
		c.header = c.ResponseWriter.Header().Clone()
	}
	return &http.Response{
		StatusCode: c.status,
		Status:     http.StatusText(c.status),
		Header:     c.header,
		Body:       io.NopCloser(bytes.NewReader(c.body.Bytes())),
		Request:    r,
	}
}
