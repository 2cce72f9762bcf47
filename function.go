// Package keygate is a Cloud Function, the bingo checker, that serves its
// endpoints only to callers with a valid API key in the X-API-Key header.
// It is the first user of keygate's library, package apikey, which keeps
// the keys, as SHA-256 hashes, in Firestore, and looks them up through an
// in-memory cache that lives across warm invocations.
//
// This file registers the function and builds its Gate; auth.go says which
// scope each route needs; keystore.go chooses the store.
package keygate

import (
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/typo"
)

func init() {
	api, _ := newAPI(os.Getenv, os.Environ(), nil, logging.NewLogger(os.Stdout))
	functions.HTTP("API", api)
}

// newAPI returns the function as deployed, apikey.FunctionFrom: Handler
// behind a Gate configured by getenv, with its keys in s (nil: Firestore)
// and its logs to log, built once (by the first request, or at the
// instance's start on Cloud Run) and closed on SIGTERM, so that the last
// usage counts are written; and that Gate, for the tests. The variables of
// environ (os.Environ's) that look mistyped are logged at WARNING when it
// is built, before a bad value stops it.
func newAPI(getenv func(string) string, environ []string, s store.Store, log *slog.Logger) (http.HandlerFunc, func() (*apikey.Gate, error)) {
	gate := sync.OnceValues(func() (*apikey.Gate, error) {
		typo.LogVariables(log, environ, LoadConfig)
		g, err := NewGate(getenv, s, log)
		if err == nil {
			g.CloseOnSignal()
		}
		return g, err
	})
	return apikey.FunctionFrom(gate, Handler, log), gate
}

// NewGate returns the function's Gate, configured by getenv (LoadConfig),
// with its keys in s, or in Firestore as the configuration says when s is
// nil, and its logs to log. A bad value is an error that names the
// variable.
func NewGate(getenv func(string) string, s store.Store, log *slog.Logger) (*apikey.Gate, error) {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return nil, err
	}
	return apikey.New(cfg, keyStore(cfg, s), apikey.WithLogger(log)), nil
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
