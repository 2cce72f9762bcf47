package keyrules

import (
	"errors"

	"github.com/keygate/keygate/apikey/store"
)

// MaxLeakURLLen is the longest LeakURL kept, in bytes; RecordLeak's caller
// shortens a longer one.
const MaxLeakURLLen = 2048

// CheckGetMany checks LeakStore.GetMany's ids: 1 to store.MaxGetMany.
func CheckGetMany(ids []string) error {
	if len(ids) < 1 || len(ids) > store.MaxGetMany {
		return errors.New("get keys: want 1 to 100 IDs")
	}
	return nil
}
