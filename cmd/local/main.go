// Command local runs keygate's API function on this machine, with the
// Functions Framework's wrapping, as Cloud Run functions would.
//
//	go run ./cmd/local [-tls-cert FILE -tls-key FILE]
//
// It serves on HOST:PORT (default 127.0.0.1:8080), with the key holders' web
// console at /console. With FIRESTORE_EMULATOR_HOST or GOOGLE_CLOUD_PROJECT
// set it keeps keys in Firestore; with neither it keeps them in memory, mints
// a demo key (which can also sign in to the console) and prints it with a
// curl line to try.
//
// The Functions Framework's server has no TLS and no timeouts of its own,
// and a reverse proxy in front of it made every request two HTTP hops, so
// this program serves the function in a server of its own, wrapped as the
// framework wraps it (framework.go): HTTPS with -tls-cert and -tls-key,
// HTTP otherwise, with a header timeout (LOCAL_READ_HEADER_TIMEOUT, default
// 10s) and an idle timeout (120s). On SIGTERM or SIGINT it stops accepting
// connections, lets the requests in flight finish and writes the last usage
// counts, all within SHUTDOWN_TIMEOUT (8s), and exits 0; or 1 when counts
// were left unwritten, which the function then logged as usage_unwritten
// for `apikey usage replay`.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/globallimit"
	"github.com/keygate/keygate/internal/logging"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: local [-tls-cert FILE -tls-key FILE]")

func run(args []string, stdout io.Writer, getenv func(string) string) error {
	flags := flag.NewFlagSet("local", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	certFile := flags.String("tls-cert", "", "serve HTTPS with this PEM certificate")
	keyFile := flags.String("tls-key", "", "and this PEM private key")
	if err := flags.Parse(args); err != nil || flags.NArg() > 0 || (*certFile == "") != (*keyFile == "") {
		return errUsage
	}
	// Clients reach this server directly, with no front end that appends
	// their address: it is the connection's, and an X-Forwarded-For a
	// client sends names nothing, unless CLIENT_ADDRESS says otherwise.
	env := getenv
	getenv = func(name string) string {
		if v := env(name); v != "" || name != "CLIENT_ADDRESS" {
			return v
		}
		return "remote-addr"
	}
	cfg, err := keygate.LoadConfig(getenv)
	if err != nil {
		return err
	}
	readHeader := readHeaderTimeout
	if v := getenv("LOCAL_READ_HEADER_TIMEOUT"); v != "" {
		if readHeader, err = time.ParseDuration(v); err != nil || readHeader <= 0 {
			return fmt.Errorf("LOCAL_READ_HEADER_TIMEOUT=%q: want a Go duration greater than zero, such as 10s", v)
		}
	}
	timeout, err := requestTimeout(getenv)
	if err != nil {
		return err
	}
	var cert *tls.Certificate
	if *certFile != "" {
		c, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("-tls-cert %s -tls-key %s: %w", *certFile, *keyFile, err)
		}
		cert = &c
	}
	host, port := getenv("HOST"), getenv("PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "8080"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("PORT=%q: want a port number from 1 to 65535", port)
	}
	scheme := "http"
	if *certFile != "" {
		scheme = "https"
	}
	base := scheme + "://" + net.JoinHostPort(displayHost(host), port)

	// Bind before printing anything: a demo key and a curl line for a port
	// that another server holds would send the reader to that server.
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("HOST=%s PORT=%s: cannot listen: %w", host, port, err)
	}
	defer ln.Close()

	var (
		intro string
		keys  store.Store
	)
	if getenv("FIRESTORE_EMULATOR_HOST") == "" && getenv("GOOGLE_CLOUD_PROJECT") == "" {
		mem := memstore.New()
		demo, err := mintDemo(mem, cfg.Prefix, "demo key")
		if err != nil {
			return err
		}
		admin, err := mintDemo(mem, cfg.Prefix, "demo admin key", keygate.ScopeKeysManage, keygate.ScopeBingoCheck, keygate.ScopeUsageRead)
		if err != nil {
			return err
		}
		keys = mem
		curlCA := ""
		if scheme == "https" {
			curlCA = "--cacert " + *certFile + " "
		}
		intro = fmt.Sprintf("keygate: keys live in memory and vanish with this process (FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT are unset).\n"+
			"Demo keys of owner \"demo\"; paste these lines into another shell:\n"+
			"  export URL=%s\n"+
			"  export KEY=%s        # the default scopes: bingo:check, usage:read\n"+
			"  export ADMIN_KEY=%s  # keys:manage too\n"+
			"Try:\n  curl %s-H \"%s: $KEY\" $URL/\nor sign in with the admin key to the web console at %s%s\n", base, demo, admin, curlCA, cfg.Header, base, keygate.ConsolePath)
	} else {
		// Say now, once, if the store cannot be reached, rather than
		// answer every request 503 later.
		ctx, cancel := context.WithTimeout(context.Background(), cfg.StoreTimeout)
		fs := firestorestore.New(firestorestore.Config{Project: cfg.Project, Database: cfg.Database, Collection: cfg.Collection})
		err := fs.Check(ctx)
		cancel()
		if err != nil {
			fs.Close()
			return fmt.Errorf("%w (project %s, database %s)", err, cfg.Project, cfg.Database)
		}
		defer fs.Close()
		keys = fs
		intro = fmt.Sprintf("keygate: keys in Firestore, project %q, database %q, collection %q\n", cfg.Project, cfg.Database, cfg.Collection)
	}

	intro += limitsLine(cfg.RedisURL, cfg.RedisCA, cfg.RedisTimeout)

	// Built now, not by the first request as when deployed: the
	// configuration and the store were checked above, and this process
	// owns its lifecycle, so the function does not catch signals.
	function, err := keygate.NewFunction(getenv, keys, logging.NewLogger(os.Stdout))
	if err != nil {
		return err
	}
	return serve(ln, cert, framework(function, timeout, os.Stderr), readHeader, cfg.ShutdownTimeout, base, intro, stdout, function.Shutdown)
}

// limitsLine says where rate limits and quotas are kept: on Redis, and
// whether it answers now (it need not: until it does, the per-instance
// limits apply), or per instance.
func limitsLine(url, ca string, timeout time.Duration) string {
	if url == "" {
		return ""
	}
	where := globallimit.Where(url)
	l, err := globallimit.New(globallimit.Options{URL: url, CA: ca, Timeout: max(timeout, time.Second)})
	if err == nil {
		err = l.Check(context.Background())
		l.Close()
	}
	if err != nil {
		return fmt.Sprintf("keygate: rate limits and quotas: Redis at %s does not answer (%v): per instance until it does\n", where, err)
	}
	return fmt.Sprintf("keygate: rate limits and quotas: global, on Redis at %s\n", where)
}

// mintDemo stores a new key of owner "demo" named name, with scopes (none:
// the function's default scopes), and returns it.
func mintDemo(mem *memstore.Store, prefix, name string, scopes ...string) (string, error) {
	key, k, err := keyrules.Mint(prefix, store.Key{Owner: "demo", Name: name, Scopes: scopes, CreatedAt: time.Now()})
	if err != nil {
		return "", err
	}
	return key, mem.Create(context.Background(), k)
}

// The server's limits. The Functions Framework's own server (StartHostPort
// is a bare ListenAndServe) has none: a client that sends half a header
// holds a connection, and a goroutine, for as long as it likes.
const (
	// readHeaderTimeout closes a connection whose request header is not
	// complete in time; LOCAL_READ_HEADER_TIMEOUT replaces it (tests use
	// a short one).
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes a kept-alive connection with no request.
	idleTimeout = 120 * time.Second
)

// serve serves h over HTTP, or HTTPS when cert is not nil, on ln with
// timeouts, once it has printed intro. On SIGTERM or SIGINT it stops
// accepting connections, lets the requests in flight finish, then writes
// the function's last usage counts with shutdownFunction, all within
// shutdown (SHUTDOWN_TIMEOUT: Cloud Run allows 10 seconds after its
// SIGTERM, so behaving within them locally is realistic), and returns.
func serve(ln net.Listener, cert *tls.Certificate, h http.Handler, readHeader, shutdown time.Duration, base, intro string,
	stdout io.Writer, shutdownFunction func(context.Context) error) error {
	// Catch the signals before anything can be served: the first one
	// drains, and a second one must not kill the process while it does.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)

	fmt.Fprint(stdout, intro)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeader,
		IdleTimeout:       idleTimeout,
	}
	serveErr := make(chan error, 1)
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
		fmt.Fprintf(stdout, "keygate: serving API on %s/ (TLS)\n", base)
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		fmt.Fprintf(stdout, "keygate: serving API on %s/\n", base)
		go func() { serveErr <- srv.Serve(ln) }()
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
	if err := shutdownFunction(ctx); err != nil {
		return fmt.Errorf("writing the last usage counts: %w", err)
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
