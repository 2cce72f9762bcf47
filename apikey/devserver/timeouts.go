package devserver

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// The server's limits, as a production front sets them. The Functions
// Framework's own server (StartHostPort is a bare ListenAndServe) has none:
// a client that sends half a header, or a body a byte at a time, holds a
// connection, and a goroutine, for as long as it likes. Nor can it say
// where it listens once it does, or serve HTTPS: hence a server of our own,
// with the framework's wrapping (framework.go).
const (
	// readHeaderTimeout closes a connection whose request header is not
	// complete in time; LOCAL_READ_HEADER_TIMEOUT replaces it (tests use
	// a short one).
	readHeaderTimeout = 10 * time.Second
	// readBodyTimeout bounds the reading of a request's body, from the
	// handler's first read of it; LOCAL_READ_BODY_TIMEOUT replaces it. The
	// API's bodies are at most 64 KiB, a secret scanning report 2 MiB:
	// 10 s is 6.5 KB/s for the one, 210 KB/s for GitHub's servers.
	readBodyTimeout = 10 * time.Second
	// idleTimeout closes a kept-alive connection with no request.
	idleTimeout = 120 * time.Second
	// cloudRunTimeout is Cloud Run's default request timeout, which the
	// write timeout follows when CLOUD_RUN_TIMEOUT_SECONDS is not set.
	cloudRunTimeout = 300 * time.Second
	// writeMargin is how long the write timeout outlasts the request
	// timeout, so that the function's own answer at its deadline gets out.
	writeMargin = 10 * time.Second
)

// serverTimeouts are the limits serve puts on its server.
type serverTimeouts struct {
	ReadHeader, ReadBody, Write, Idle time.Duration
}

// loadTimeouts reads LOCAL_READ_HEADER_TIMEOUT and LOCAL_READ_BODY_TIMEOUT
// over the defaults; request is CLOUD_RUN_TIMEOUT_SECONDS (0: unset).
func loadTimeouts(getenv func(string) string, request time.Duration) (serverTimeouts, error) {
	t := serverTimeouts{ReadHeader: readHeaderTimeout, ReadBody: readBodyTimeout, Idle: idleTimeout,
		Write: cmp.Or(request, cloudRunTimeout) + writeMargin}
	for _, v := range []struct {
		name string
		d    *time.Duration
	}{{"LOCAL_READ_HEADER_TIMEOUT", &t.ReadHeader}, {"LOCAL_READ_BODY_TIMEOUT", &t.ReadBody}} {
		if s := getenv(v.name); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return t, fmt.Errorf("%s=%q: want a Go duration greater than zero, such as 10s", v.name, s)
			}
			*v.d = d
		}
	}
	return t, nil
}

// server is an http.Server for h with the limits of t.
func (t serverTimeouts) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           bodyDeadline(h, t.ReadBody),
		ReadHeaderTimeout: t.ReadHeader,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
	}
}

// bodyDeadline gives each request with a body d from the handler's start
// to read it: a client that uploads slowly is cut off, the handler reading
// an error, and a body the handler leaves unread is discarded by the server
// within the same deadline. Not http.Server.ReadTimeout: that deadline goes
// on running once the body is read, and when it passes the server ends the
// request's context, so that it would cut off a handler running longer
// than d, whatever CLOUD_RUN_TIMEOUT_SECONDS allows. This one is lifted once
// the body has been read to its end.
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			deadline := time.Now().Add(d)
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(deadline) == nil {
				r = r.WithContext(r.Context()) // a copy: the server keeps its own body, to discard
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, deadline: deadline}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// errBodyTimeout is the error a body read past its deadline returns.
var errBodyTimeout = errors.New("the request body did not arrive in time")

// deadlineBody is a request body whose reading must end by deadline. Read
// to its end, it lifts the connection's deadline, so that the server's
// read of the connection after the body (which ends the request's context
// on an error) runs without it.
type deadlineBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	deadline time.Time
	done     bool // read to its end: the deadline is lifted
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if !b.done && !time.Now().Before(b.deadline) {
		return 0, errBodyTimeout
	}
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF && !b.done:
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errBodyTimeout
	}
	return n, err
}
