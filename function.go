// Package keygate is a Cloud Function, the bingo checker, that serves its
// endpoints only to callers with a valid API key in the X-API-Key header.
// It is the first user of keygate's library, package apikey, which keeps
// the keys, as SHA-256 hashes, in Firestore, and looks them up through an
// in-memory cache that lives across warm invocations.
//
// This file registers the function and wires it; auth.go says which scope
// each route needs; keystore.go chooses the store.
package keygate

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/problem"
)

func init() {
	functions.HTTP("API", API)
}

// The function's state, built by the first request and kept across warm
// invocations: the Gate (with the Firestore client, the key cache and the
// meter) and the routes behind it.
var (
	once     sync.Once
	gate     atomic.Pointer[apikey.Gate]
	handler  http.Handler
	startErr error
	log      = logging.NewLogger(os.Stdout)
)

// API is the Cloud Function's entry point. Its configuration comes from the
// environment (see apikey.LoadConfig); a bad value makes every request a
// 500 whose log entry names the variable.
func API(w http.ResponseWriter, r *http.Request) {
	once.Do(func() {
		cfg, err := LoadConfig(os.Getenv)
		if err != nil {
			startErr = err
			return
		}
		g := apikey.New(cfg, keyStore(cfg), apikey.WithLogger(log))
		handler = Handler(g)
		gate.Store(g)
		g.CloseOnSignal()
	})
	if startErr != nil {
		log.Error("keygate is misconfigured", slog.String("error", startErr.Error()))
		problem.Write(w, problem.New(http.StatusInternalServerError, "misconfigured",
			"The service is misconfigured; its logs say how."))
		return
	}
	handler.ServeHTTP(w, r)
}

// LoadConfig is apikey.LoadConfig with this function's default scopes: a
// key stored without scopes grants DefaultScopes unless KEY_DEFAULT_SCOPES
// says otherwise.
func LoadConfig(getenv func(string) string) (apikey.Config, error) {
	return apikey.LoadConfig(func(name string) string {
		if v := getenv(name); v != "" || name != "KEY_DEFAULT_SCOPES" {
			return v
		}
		return DefaultScopes
	})
}

// Shutdown closes the function's Gate for a process that owns its own
// lifecycle (cmd/local): requests that arrive from now on are refused with
// 503 and not counted, requests already admitted finish, and the usage
// counted is written, all bounded by ctx. It is safe to call more than once
// and concurrently with the function's own SIGTERM handling; a function that
// has served no request has nothing to do.
func Shutdown(ctx context.Context) error {
	if g := gate.Load(); g != nil {
		return g.Close(ctx)
	}
	return nil
}
