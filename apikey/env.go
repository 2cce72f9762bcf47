package apikey

import (
	"os"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/internal/typo"
)

// FromEnv returns a Gate on Firestore configured by LoadConfig. It does no
// I/O (hence no context); Gate.Check says whether the store answers. A
// variable set in the environment that LoadConfig does not read, but one or
// two edits from one it does (KEY_CACHE_TL), is logged at WARNING, naming
// both and never the value: a misspelling would otherwise be ignored.
func FromEnv(opts ...Option) (*Gate, error) {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	fs := firestorestore.New(firestorestore.Config{Project: cfg.Project, Database: cfg.Database, Collection: cfg.Collection})
	g := New(cfg, fs, opts...)
	typo.LogVariables(g.log, os.Environ(), LoadConfig)
	return g, nil
}
