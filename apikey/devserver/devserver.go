// Package devserver serves a keygate function on this machine, as the
// Functions Framework serves it on Cloud Run, with no Java and no gcloud:
// with FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT unset, its keys
// live in memory and it prints demo keys to call it with. A function's
// cmd/main.go is one call:
//
//	func main() { devserver.Main(things.Routes, "things:read") }
//
// With either variable set, it keeps keys in Firestore (the emulator at
// FIRESTORE_EMULATOR_HOST), minted with the apikey CLI, and stops at once
// when Firestore does not answer. It serves on HOST:PORT (127.0.0.1:8080),
// says so once it listens, and on SIGTERM or SIGINT lets the requests in
// flight finish and writes the last usage counts.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/events"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/globallimit"
	"github.com/keygate/keygate/internal/logging"
)

// Main serves routes, the function's (as apikey.Function takes them), with
// two demo keys when keys live in memory: KEY, which grants scopes, and
// OTHER_KEY, stored without scopes. It exits 1 when Run fails, saying why.
func Main(routes func(*apikey.Gate) http.Handler, scopes ...string) {
	err := Run(Options{Routes: routes, Keys: []Key{{Var: "KEY", Scopes: scopes}, {Var: "OTHER_KEY"}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "devserver:", err)
		os.Exit(1)
	}
}

// A Key is a demo key, minted for owner "demo" when keys live in memory
// and printed as a line to paste into a shell: export Var=key # Note.
type Key struct {
	Var    string
	Scopes []string // none: the configuration's default scopes
	Note   string   // "": the scopes it grants
}

// Options say what Run serves and how. Only Routes is required.
type Options struct {
	Routes func(*apikey.Gate) http.Handler
	// LoadConfig reads the Gate's configuration; nil: apikey.LoadConfig.
	LoadConfig func(getenv func(string) string) (apikey.Config, error)
	Keys       []Key // minted when keys live in memory
	// Name is what the "serving" line calls the function; "": function.
	Name string
	// More returns lines to print after the demo keys, given the URL.
	More func(base string) string
	// CertFile and KeyFile, both or neither, make it serve HTTPS.
	CertFile, KeyFile string
	// Getenv reads the variables; nil: os.Getenv. The Firestore client
	// reads FIRESTORE_EMULATOR_HOST from the process's environment.
	Getenv         func(string) string
	Stdout, Stderr io.Writer // nil: os.Stdout, os.Stderr
}

// Run serves o.Routes until SIGTERM or SIGINT, as the package comment says.
// Any start-up problem (the port taken, a bad variable, an unreadable
// certificate, Firestore unreachable) is an error that names the setting,
// returned before anything is printed. The error after a signal says
// whether the last usage counts were left unwritten.
func Run(o Options) error {
	// Catch the signals before anything can be served: the first one
	// drains, and a second one must not kill the process while it does.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)
	return run(o, sigs)
}

// run is Run until sigs delivers.
func run(o Options, sigs <-chan os.Signal) error {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.LoadConfig == nil {
		o.LoadConfig = apikey.LoadConfig
	}
	if o.Name == "" {
		o.Name = "function"
	}
	// Clients reach this server directly, with no front end that appends
	// their address: it is the connection's, and an X-Forwarded-For a
	// client sends names nothing, unless CLIENT_ADDRESS says otherwise.
	getenv := func(name string) string {
		if v := o.Getenv(name); v != "" || name != "CLIENT_ADDRESS" {
			return v
		}
		return "remote-addr"
	}
	cfg, err := o.LoadConfig(getenv)
	if err != nil {
		return err
	}
	srv, err := listen(o, getenv)
	if err != nil {
		return err
	}
	defer srv.ln.Close()

	var (
		intro string
		keys  store.Store
	)
	if getenv("FIRESTORE_EMULATOR_HOST") == "" && getenv("GOOGLE_CLOUD_PROJECT") == "" {
		mem := memstore.New()
		intro, err = mintDemo(mem, cfg, o.Keys, srv.base, curlCA(o.CertFile))
		if err != nil {
			return err
		}
		if o.More != nil {
			intro += o.More(srv.base)
		}
		keys = mem
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
	// owns its lifecycle, so the Gate does not catch signals.
	opts := []apikey.Option{apikey.WithLogger(logging.NewLogger(o.Stdout))}
	if cfg.EventsTopic == "" { // a newcomer sees the events as log lines
		opts = append(opts, apikey.WithEvents(events.NewLog(o.Stdout, events.Source(cfg.Project, cfg.Database, cfg.Collection))))
	}
	gate := apikey.New(cfg, keys, opts...)
	h := apikey.FunctionFrom(func() (*apikey.Gate, error) { return gate, nil }, o.Routes, nil)
	return srv.serve(framework(h, srv.timeout, o.Stderr), o.Name, intro, o.Stdout, cfg.ShutdownTimeout, gate.Close, sigs)
}

// curlCA is what curl needs to trust certFile, or "" for HTTP.
func curlCA(certFile string) string {
	if certFile == "" {
		return ""
	}
	return "--cacert " + certFile + " "
}

// mintDemo stores the demo keys in mem and returns the lines that say so,
// with a curl line that tries the first.
func mintDemo(mem *memstore.Store, cfg apikey.Config, demo []Key, base, ca string) (string, error) {
	var b strings.Builder
	b.WriteString("keygate: keys live in memory and vanish with this process (FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT are unset).\n")
	if len(demo) == 0 {
		return b.String(), nil
	}
	width := 0
	for _, k := range demo {
		width = max(width, len(k.Var))
	}
	fmt.Fprintf(&b, "Demo keys of owner \"demo\"; paste these lines into another shell:\n  export URL=%s\n", base)
	for _, k := range demo {
		key, stored, err := keyrules.Mint(cfg.Prefix, store.Key{Owner: "demo", Name: "demo " + strings.ToLower(k.Var), Scopes: k.Scopes, CreatedAt: time.Now()})
		if err == nil {
			err = mem.Create(context.Background(), stored)
		}
		if err != nil {
			return "", fmt.Errorf("demo key %s: %w", k.Var, err)
		}
		note := k.Note
		if note == "" && len(k.Scopes) > 0 {
			note = strings.Join(k.Scopes, ", ")
		} else if note == "" && len(cfg.DefaultScopes) > 0 {
			note = "the default scopes: " + strings.Join(cfg.DefaultScopes, ", ")
		} else if note == "" {
			note = "no scope"
		}
		fmt.Fprintf(&b, "  export %s=%s%s  # %s\n", k.Var, key, strings.Repeat(" ", width-len(k.Var)), note)
	}
	fmt.Fprintf(&b, "Try:\n  curl %s-H \"%s: $%s\" $URL/\n", ca, cfg.Header, demo[0].Var)
	return b.String(), nil
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
		l.Close(context.Background())
	}
	if err != nil {
		return fmt.Sprintf("keygate: rate limits and quotas: Redis at %s does not answer (%v): per instance until it does\n", where, err)
	}
	return fmt.Sprintf("keygate: rate limits and quotas: global, on Redis at %s\n", where)
}

// errUnwritten wraps the error of a shutdown that left counts unwritten.
var errUnwritten = errors.New("writing the last usage counts")
