package keygate

import (
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/firestorestore"
)

// chosenStore is the store UseKeyStore chose; nil means Firestore.
var chosenStore apikey.Store

// UseKeyStore makes API keep keys in s instead of Firestore. Call it before
// the first request; the local runner uses it for its in-memory demo.
func UseKeyStore(s apikey.Store) {
	chosenStore = s
}

// keyStore is where the function keeps keys: the store UseKeyStore chose,
// or else Firestore as cfg says (the emulator when FIRESTORE_EMULATOR_HOST
// is set).
func keyStore(cfg apikey.Config) apikey.Store {
	if chosenStore != nil {
		return chosenStore
	}
	return firestorestore.New(cfg.Firestore())
}
