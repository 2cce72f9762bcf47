package apikey

import (
	"os"

	"github.com/keygate/keygate/apikey/firestorestore"
)

// FromEnv returns a Gate on Firestore configured by LoadConfig. It does no
// I/O (hence no context); Gate.Check says whether the store answers.
func FromEnv(opts ...Option) (*Gate, error) {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	fs := firestorestore.New(firestorestore.Config{Project: cfg.Project, Database: cfg.Database, Collection: cfg.Collection})
	return New(cfg, fs, opts...), nil
}
