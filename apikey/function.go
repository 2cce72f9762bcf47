package apikey

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/problem"
)

// Function is a Cloud Function's entry point: routes behind a Gate from
// FromEnv(opts...), which closes itself on SIGTERM. Register it with the
// Functions Framework, functions.HTTP("Things", apikey.Function(Routes));
// tests call Routes with a Gate of package apikeytest.
func Function(routes func(*Gate) http.Handler, opts ...Option) http.HandlerFunc {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return FunctionFrom(func() (*Gate, error) {
		g, err := FromEnv(opts...)
		if err == nil {
			g.CloseOnSignal() // the last usage counts written before exit
		}
		return g, err
	}, routes, o.log)
}

// FunctionFrom is Function with the Gate from build, for another store or
// configuration; log (nil: Cloud Logging on stdout) gets build's error.
//
// build runs once, on first use, never in init, so that go test, which runs
// init, never reaches for Firestore. On Cloud Run (K_SERVICE set; never
// under go test) it runs as soon as the entry point is made, beside the
// Framework's start, and the Gate then reads the store once (Check), so the
// first request finds the store's connection open and the first change-feed
// sync done. While build fails, every request is answered 500
// CodeMisconfigured, and its error, which names the variable, logged.
func FunctionFrom(build func() (*Gate, error), routes func(*Gate) http.Handler, log *slog.Logger) http.HandlerFunc {
	f := newFunction(build, routes, log)
	if os.Getenv("K_SERVICE") != "" && !testing.Testing() {
		go f.warm(context.Background())
	}
	return f.ServeHTTP
}

// function is the entry point that FunctionFrom returns.
type function struct {
	handler func() (http.Handler, error) // built once
	gate    func() (*Gate, error)        // built once, with handler
	log     *slog.Logger
}

func newFunction(build func() (*Gate, error), routes func(*Gate) http.Handler, log *slog.Logger) *function {
	if log == nil {
		log = logging.NewLogger(os.Stdout)
	}
	f := &function{log: log, gate: sync.OnceValues(build)}
	f.handler = sync.OnceValues(func() (http.Handler, error) {
		g, err := f.gate()
		if err != nil {
			return nil, err
		}
		return routes(g), nil
	})
	return f
}

// ServeHTTP serves r with the routes, built by the first request that
// needs them.
func (f *function) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, err := f.handler()
	if err != nil {
		f.log.Error("keygate is misconfigured", slog.String("error", err.Error()))
		problem.Write(w, problem.New(http.StatusInternalServerError, CodeMisconfigured,
			"The service is misconfigured; its logs say how."))
		return
	}
	h.ServeHTTP(w, r)
}

// warm builds the Gate and the routes, reads the store once, logging what
// fails, and waits for the change feed's first sync: what the first
// request would otherwise do in sequence.
func (f *function) warm(ctx context.Context) {
	if _, err := f.handler(); err != nil {
		return // each request logs it
	}
	g, _ := f.gate()
	ctx, cancel := context.WithTimeout(ctx, g.cfg.StoreTimeout)
	defer cancel()
	if err := g.Check(ctx); err != nil {
		f.log.Warn("the key store does not answer at start-up", slog.String("error", err.Error()))
	}
	g.feed.follow(ctx, g.now())
}
