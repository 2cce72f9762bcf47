// Package keygate is a Cloud Function, the bingo checker, that serves its
// endpoints only to callers with a valid API key in the X-API-Key header.
// It is the first user of keygate's library, package apikey, which keeps
// the keys, as SHA-256 hashes, in Firestore, and looks them up through an
// in-memory cache that lives across warm invocations.
//
// This file registers the function and builds it; auth.go says which scope
// each route needs; keystore.go chooses the store.
package keygate

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/problem"
	"github.com/keygate/keygate/internal/typo"
)

func init() {
	functions.HTTP("API", newAPI(os.Getenv, os.Environ(), nil, logging.NewLogger(os.Stdout)).ServeHTTP)
}

// api is the function as deployed: built from the environment by its first
// request and kept across warm invocations, where its cache holds the keys;
// closed on SIGTERM, so that the last usage counts are written. The first
// request builds it, not init, so that a program that imports the package
// (cmd/local, the benchmarks) builds no Firestore client it does not use,
// and so that a bad configuration value makes every request a 500 whose log
// entry names the variable, rather than an instance that fails to start.
type api struct {
	function func() (*Function, error) // built once
	log      *slog.Logger
}

// newAPI returns the function as deployed, configured by getenv, with its
// keys in s (nil: Firestore) and its logs to log. The variables of environ
// (os.Environ's) that look mistyped are logged at WARNING when it is built,
// before a bad value stops it.
func newAPI(getenv func(string) string, environ []string, s store.Store, log *slog.Logger) api {
	return api{log: log, function: sync.OnceValues(func() (*Function, error) {
		typo.LogVariables(log, environ, LoadConfig)
		f, err := NewFunction(getenv, s, log)
		if err == nil {
			f.gate.CloseOnSignal()
		}
		return f, err
	})}
}

// ServeHTTP builds the function if no request has yet, and serves r with
// it; while the configuration is bad, with a 500 whose log entry says why.
func (a api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, err := a.function()
	if err != nil {
		a.log.Error("keygate is misconfigured", slog.String("error", err.Error()))
		problem.Write(w, problem.New(http.StatusInternalServerError, apikey.CodeMisconfigured,
			"The service is misconfigured; its logs say how."))
		return
	}
	f.ServeHTTP(w, r)
}

// Function is the bingo function: its Gate (with the key cache and the
// meter) and the routes behind it.
type Function struct {
	gate    *apikey.Gate
	handler http.Handler
}

// NewFunction builds the function with its configuration from getenv (see
// LoadConfig), its keys in s, or in Firestore as the configuration says
// when s is nil, and its logs to log. A bad value is an error that names
// the variable.
func NewFunction(getenv func(string) string, s store.Store, log *slog.Logger) (*Function, error) {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return nil, err
	}
	g := apikey.New(cfg, keyStore(cfg, s), apikey.WithLogger(log))
	return &Function{gate: g, handler: Handler(g)}, nil
}

// ServeHTTP serves the function's endpoints.
func (f *Function) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.handler.ServeHTTP(w, r)
}

// Shutdown closes the function for a process that owns its own lifecycle
// (cmd/local; the deployed function closes itself on SIGTERM): requests
// that arrive from now on are refused with 503 and not counted, requests
// already admitted finish, and the usage counted is written, all bounded by
// ctx. It is safe to call more than once.
func (f *Function) Shutdown(ctx context.Context) error {
	return f.gate.Close(ctx)
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
