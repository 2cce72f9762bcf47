package apikey

import (
	"context"
	"os"

	"github.com/keygate/keygate/apikey/firestorestore"
)

// FromEnv returns a Gate configured from the environment (LoadConfig) that
// keeps keys in Firestore: the project in GOOGLE_CLOUD_PROJECT (detected
// from the credentials when unset), the database in FIRESTORE_DATABASE and
// the collection in KEYS_COLLECTION; the emulator at
// FIRESTORE_EMULATOR_HOST when that is set. It does not connect: the first
// request does. A bad variable is an error that names it.
func FromEnv(ctx context.Context) (*Gate, error) {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	return New(cfg, firestorestore.New(cfg.Firestore())), nil
}

// Firestore is where cfg keeps keys in Firestore.
func (c Config) Firestore() firestorestore.Config {
	return firestorestore.Config{Project: c.Project, Database: c.Database, Collection: c.Collection}
}
