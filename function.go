// Package keygate is an HTTP Cloud Function that serves its endpoints only to
// callers with a valid API key in the X-API-Key header. Keys are kept, as
// SHA-256 hashes, in Firestore, and looked up through an in-memory cache that
// lives across warm invocations.
package keygate

import (
	"log/slog"
	"net/http"
	"os"
	"sync"

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
	defaultServer *Server
	defaultErr    error
	defaultLog    = NewLogger(os.Stdout)
)

// UseKeyStore makes API keep keys in store instead of Firestore. Call it
// before the first request; the local runner uses it for its in-memory mode.
func UseKeyStore(store KeyStore) {
	defaultStore = store
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
		defaultServer = NewServer(cfg, store, Options{Logger: defaultLog})
	})
	if defaultErr != nil {
		defaultLog.Error("keygate is misconfigured", slog.String("error", defaultErr.Error()))
		writeProblem(w, newProblem(http.StatusInternalServerError, "misconfigured",
			"The service is misconfigured; its logs say how."))
		return
	}
	defaultServer.ServeHTTP(w, r)
}
