package apikey

import (
	"context"
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
func FromEnv(ctx context.Context, opts ...Option) (*Gate, error) {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	return New(cfg, firestorestore.New(cfg.Firestore()), opts...), nil
}

// Firestore is where cfg keeps keys in Firestore.
func (c Config) Firestore() firestorestore.Config {
	return firestorestore.Config{Project: c.Project, Database: c.Database, Collection: c.Collection}
}
