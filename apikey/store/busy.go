package store

import "errors"

// ErrBusy is returned, wrapped with the store's own error, by a write that
// other writes kept contending with until its deadline: the store answered,
// and refused this write each time because another one touched the same
// document at once (Firestore's ABORTED). Nothing of it was applied by an
// attempt that ended so; retrying later may succeed. The Gate answers it 503
// store_busy, not store_unavailable: the store is up, and the caller is not
// told that it is down.
var ErrBusy = errors.New("the key store is busy: concurrent writes to the same documents contended until the deadline")
