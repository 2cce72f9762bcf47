package devserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// server is a bound listener and the settings it serves with.
type server struct {
	ln      net.Listener
	cert    *tls.Certificate // nil: HTTP
	base    string           // the URL to print: scheme://host:port
	limits  serverTimeouts
	timeout time.Duration // each request's, CLOUD_RUN_TIMEOUT_SECONDS; 0: none
}

// listen checks the server's settings and binds HOST:PORT (127.0.0.1:8080
// by default), before anything is printed: a demo key and a curl line for
// a port that another server holds would send the reader to that server.
func listen(o Options, getenv func(string) string) (*server, error) {
	s := &server{}
	var err error
	if s.timeout, err = requestTimeout(getenv); err != nil {
		return nil, err
	}
	if s.limits, err = loadTimeouts(getenv, s.timeout); err != nil {
		return nil, err
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("HTTPS needs a certificate and its key, not one of them")
	}
	scheme := "http"
	if o.CertFile != "" {
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert %s -tls-key %s: %w", o.CertFile, o.KeyFile, err)
		}
		s.cert, scheme = &c, "https"
	}
	host, port := getenv("HOST"), getenv("PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "8080"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("PORT=%q: want a port number from 1 to 65535", port)
	}
	s.base = scheme + "://" + net.JoinHostPort(displayHost(host), port)
	if s.ln, err = net.Listen("tcp", net.JoinHostPort(host, port)); err != nil {
		return nil, fmt.Errorf("HOST=%s PORT=%s: cannot listen: %w", host, port, err)
	}
	return s, nil
}

// serve serves h on the bound listener, over HTTP or HTTPS, with timeouts,
// once it has printed intro and then that it serves name. On a signal from
// sigs (SIGTERM, SIGINT) it stops accepting connections, lets the requests in flight
// finish, then writes the function's last usage counts with closeGate,
// all within shutdown (SHUTDOWN_TIMEOUT: Cloud Run allows 10 seconds after
// its SIGTERM, so behaving within them locally is realistic), and returns.
func (s *server) serve(h http.Handler, name, intro string, stdout io.Writer, shutdown time.Duration,
	closeGate func(context.Context) error, sigs <-chan os.Signal) error {
	fmt.Fprint(stdout, intro)
	srv := s.limits.server(h)
	serveErr := make(chan error, 1)
	if s.cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*s.cert}, MinVersion: tls.VersionTLS12}
		fmt.Fprintf(stdout, "keygate: serving %s on %s/ (TLS)\n", name, s.base)
		go func() { serveErr <- srv.ServeTLS(s.ln, "", "") }()
	} else {
		fmt.Fprintf(stdout, "keygate: serving %s on %s/\n", name, s.base)
		go func() { serveErr <- srv.Serve(s.ln) }()
	}

	var sig os.Signal
	select {
	case err := <-serveErr:
		return err
	case sig = <-sigs:
	}
	fmt.Fprintf(stdout, "keygate: %v: finishing the requests in flight\n", sig)
	ctx, cancel := context.WithTimeout(context.Background(), shutdown)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintf(stdout, "keygate: requests still in flight after %v are cut off: %v\n", shutdown, err)
		srv.Close()
	}
	if err := closeGate(ctx); err != nil {
		return fmt.Errorf("%w: %w", errUnwritten, err)
	}
	fmt.Fprintln(stdout, "keygate: stopped")
	return nil
}

// displayHost is host as a URL should show it.
func displayHost(host string) string {
	if host == "" || host == "0.0.0.0" || host == "::" || strings.HasPrefix(host, "127.") {
		return "localhost"
	}
	return host
}
