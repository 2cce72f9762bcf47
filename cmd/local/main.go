// Command local runs keygate's API function on this machine through the
// Functions Framework, as Cloud Run functions would.
//
//	go run ./cmd/local [-tls-cert FILE -tls-key FILE]
//
// It serves on HOST:PORT (default 127.0.0.1:8080). With FIRESTORE_EMULATOR_HOST
// or GOOGLE_CLOUD_PROJECT set it keeps keys in Firestore; with neither it keeps
// them in memory, mints a demo key and prints it with a curl line to try.
//
// The Functions Framework has no TLS of its own: with -tls-cert and -tls-key,
// the framework listens on a loopback port and this program serves HTTPS on
// HOST:PORT in front of it.
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
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/keygate/keygate"
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
	cfg, err := keygate.LoadConfig(getenv)
	if err != nil {
		return err
	}
	host, port := getenv("HOST"), getenv("PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "8080"
	}
	scheme := "http"
	if *certFile != "" {
		scheme = "https"
	}
	base := scheme + "://" + net.JoinHostPort(displayHost(host), port)

	if getenv("FIRESTORE_EMULATOR_HOST") == "" && getenv("GOOGLE_CLOUD_PROJECT") == "" {
		store := keygate.NewMemoryStore()
		key, k, err := keygate.MintKey(cfg.Prefix, keygate.Key{Owner: "demo", Name: "demo key", CreatedAt: time.Now()})
		if err != nil {
			return err
		}
		if err := store.Create(context.Background(), k); err != nil {
			return err
		}
		keygate.UseKeyStore(store)
		curlCA := ""
		if scheme == "https" {
			curlCA = "--cacert " + *certFile + " "
		}
		fmt.Fprintf(stdout, "keygate: FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT are unset, so keys live in memory and vanish with this process.\n"+
			"Demo key (owner \"demo\"): %s\nTry:\n  curl %s-H '%s: %s' %s/\n", key, curlCA, cfg.Header, key, base)
	} else {
		fmt.Fprintf(stdout, "keygate: keys in Firestore, project %q, database %q, collection %q\n", cfg.Project, cfg.Database, cfg.Collection)
	}

	// The framework serves the function named by FUNCTION_TARGET at "/".
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", "API")
	}
	if *certFile == "" {
		fmt.Fprintf(stdout, "keygate: serving API on %s/\n", base)
		return funcframework.StartHostPort(host, port)
	}
	return serveTLS(host, port, *certFile, *keyFile, base, stdout)
}

// serveTLS runs the framework on a loopback port and serves HTTPS on
// host:port in front of it.
func serveTLS(host, port, certFile, keyFile, base string, stdout io.Writer) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("loading the TLS certificate: %w", err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	innerPort := fmt.Sprint(inner.Addr().(*net.TCPAddr).Port)
	inner.Close()
	frameworkErr := make(chan error, 1)
	go func() { frameworkErr <- funcframework.StartHostPort("127.0.0.1", innerPort) }()

	target := &url.URL{Scheme: "http", Host: "127.0.0.1:" + innerPort}
	srv := &http.Server{
		Addr:              net.JoinHostPort(host, port),
		Handler:           httputil.NewSingleHostReverseProxy(target),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(stdout, "keygate: serving API on %s/ (TLS in front of the Functions Framework on %s)\n", base, target.Host)
	tlsErr := make(chan error, 1)
	go func() { tlsErr <- srv.ListenAndServeTLS("", "") }()
	select {
	case err := <-frameworkErr:
		return fmt.Errorf("functions framework: %w", err)
	case err := <-tlsErr:
		return err
	}
}

// displayHost is host as a URL should show it.
func displayHost(host string) string {
	if host == "" || host == "0.0.0.0" || host == "::" || strings.HasPrefix(host, "127.") {
		return "localhost"
	}
	return host
}
