// Package keygate is an HTTP Cloud Function that serves its endpoints only to
// callers with a valid API key in the X-API-Key header. Keys are kept, as
// SHA-256 hashes, in Firestore, and looked up through an in-memory cache that
// lives across warm invocations.
package keygate

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
)

func init() {
	functions.HTTP("API", API)
}

// The function's state, built by the first request and kept across warm
// invocations: the configuration, the Firestore client (inside the store)
// and the key cache (inside the server).
var (
	defaultOnce   sync.Once
	defaultStore  KeyStore // set by UseKeyStore; nil means Firestore
	defaultServer atomic.Pointer[Server]
	defaultErr    error
	defaultLog    = NewLogger(os.Stdout)
)

// UseKeyStore makes API keep keys in store instead of Firestore. Call it
// before the first request; the local runner uses it for its in-memory mode.
func UseKeyStore(store KeyStore) {
	defaultStore = store
}

// terminateTimeout bounds the shutdown: Cloud Run kills an instance 10
// seconds after its SIGTERM.
const terminateTimeout = 8 * time.Second

// flushOnTerminate waits for SIGTERM (Cloud Run's notice before it stops an
// instance) or SIGINT, shuts the server down (Server.Close: requests it
// counted finish, later ones get 503, every count is written), and then lets
// the signal end the process as it would have.
func flushOnTerminate(s *Server) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	sig := <-ch
	ctx, cancel := context.WithTimeout(context.Background(), terminateTimeout)
	if err := s.Close(ctx); err != nil {
		defaultLog.Error("usage not written before exit", slog.String("error", err.Error()))
	} else {
		defaultLog.Info("usage written before exit", slog.String("signal", sig.String()))
	}
	cancel()
	signal.Stop(ch)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Signal(sig)
	}
}

// Shutdown stops the function's server for a process that owns its own
// lifecycle (cmd/local): requests that arrive from now on are refused with
// 503 and not counted, requests already admitted finish, and the usage
// counted is written, all bounded by ctx. It is safe to call more than once
// and concurrently with the function's own SIGTERM handling; a function that
// has served no request has nothing to do.
func Shutdown(ctx context.Context) error {
	if s := defaultServer.Load(); s != nil {
		return s.Close(ctx)
	}
	return nil
}

// API is the Cloud Function's entry point. Its configuration comes from the
// environment (see Config); a bad value makes every request a 500 whose log
// entry names the variable.
func API(w http.ResponseWriter, r *http.Request) {
	defaultOnce.Do(func() {
		cfg, err := LoadConfig(os.Getenv)
		if err != nil {
			defaultErr = err
			return
		}
		store := defaultStore
		if store == nil {
			store = NewFirestoreStore(cfg)
		}
		s := NewServer(cfg, store, Options{Logger: defaultLog})
		defaultServer.Store(s)
		go flushOnTerminate(s)
	})
	if defaultErr != nil {
		defaultLog.Error("keygate is misconfigured", slog.String("error", defaultErr.Error()))
		writeProblem(w, newProblem(http.StatusInternalServerError, "misconfigured",
			"The service is misconfigured; its logs say how."))
		return
	}
	defaultServer.Load().ServeHTTP(w, r)
}
