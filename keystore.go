package keygate

import (
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/store"
)

// keyStore is where the function keeps keys: s, which the local runner and
// the tests choose, or else, when s is nil, Firestore as cfg says (the
// emulator when FIRESTORE_EMULATOR_HOST is set).
func keyStore(cfg apikey.Config, s store.Store) store.Store {
	if s != nil {
		return s
	}
	return firestorestore.New(firestorestore.Config{Project: cfg.Project, Database: cfg.Database, Collection: cfg.Collection})
}
