package apikey

import (
	"os"

	"github.com/keygate/keygate/apikey/firestorestore"
)

// FromEnv returns a Gate configured from the environment (LoadConfig),
// built with opts, that keeps keys in Firestore: the project in
// GOOGLE_CLOUD_PROJECT (detected from the credentials when unset), the
// database in FIRESTORE_DATABASE and the collection in KEYS_COLLECTION; the
// emulator at FIRESTORE_EMULATOR_HOST when that is set. A bad variable is
// an error that names it.
//
// It does not wait for the store: the Gate reads the store's change feed
// in the background from the start, and logs a warning when that fails
// (no credentials, no emulator), and each request for a key it has not
// cached waits for the store, at most STORE_TIMEOUT, and is answered 503
// when it does not answer. Call [Gate.Check] to know at start-up.
func FromEnv(opts ...Option) (*Gate, error) {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	fs := firestorestore.New(firestorestore.Config{Project: cfg.Project, Database: cfg.Database, Collection: cfg.Collection})
	return New(cfg, fs, opts...), nil
}
