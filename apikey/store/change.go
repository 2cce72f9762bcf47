package store

import (
	"context"
	"errors"
	"time"
)

// The change feed. A Gate caches keys and plans; the feed is how it learns,
// within seconds, that one of them changed on another instance or with the
// CLI, at a cost that does not grow with the number of keys: every store
// write that changes what a cached key or plan means records one Change in
// the same transaction, and each Gate reads the changes committed since it
// last looked (ChangeStore.Changes), dropping what they name from its cache.
//
// Only writes made through a Store are recorded: a key or plan document
// edited by other means (an operator in the Firestore console) is seen when
// its cache entry is next read, within KEY_CACHE_TTL.

// ChangeKind says what a Change changed.
type ChangeKind string

const (
	// ChangeKey: a key was revoked, rotated (its expiry moved) or deleted.
	// The Change's ID is the key's ID.
	ChangeKey ChangeKind = "key"
	// ChangeOwner: an owner's plan was set or deleted. The Change's ID is
	// the owner.
	ChangeOwner ChangeKind = "owner"
)

// Change is one committed change to a key or an owner's plan.
type Change struct {
	Kind ChangeKind
	ID   string
	// At is when the store made the change, by its clock: for people to
	// read. The feed's order is the order of the commits, as far as the
	// store can tell: a change whose commit became visible late may come
	// after one committed just after it.
	At time.Time
}

// ChangeCursor is a place in a store's change feed. It is opaque: only the
// store that returned it can read it. The zero cursor, "", means the
// present (see ChangeStore.Changes).
type ChangeCursor string

// ChangeRetention is the least time a store keeps a change: a reader that
// last read the feed longer ago than this may have missed changes, and must
// assume anything changed.
const ChangeRetention = 24 * time.Hour

// ErrChangesExpired is returned by ChangeStore.Changes for a cursor older
// than the changes the store still keeps, or a feed broken by hand (emptied,
// pruned, or behind the cursor): some changes after it are gone. The
// reader must assume anything changed.
var ErrChangesExpired = errors.New("the changes after this cursor are no longer kept")

// ChangeStore is the change feed of a store: Revoke (when it revokes), Rotate
// and Delete (of a key), SetPlan and DeletePlan each record exactly one
// Change when they succeed, atomically with the write; every other call,
// and every call that fails or changes nothing (revoking a revoked key),
// records none.
type ChangeStore interface {
	// Changes returns the changes committed after the cursor after, oldest
	// first, at most limit (at least 1) of them, and the cursor to pass
	// next time, which is never before after. Fewer than limit changes
	// means that no more were committed when the store read them. Every
	// change committed once Changes has returned is after next: so a
	// reader that always passes the cursor it was given sees every change
	// exactly once, whatever commits concurrently.
	//
	// With the zero cursor, Changes returns no changes and the cursor of
	// the present: every change committed before the call is at or before
	// it, every change committed after the call is after it. A reader takes
	// it before it caches anything.
	//
	// A cursor the store did not return is an error; a cursor older than
	// the changes the store keeps (at least ChangeRetention) may be
	// ErrChangesExpired.
	Changes(ctx context.Context, after ChangeCursor, limit int) (changes []Change, next ChangeCursor, err error)
}
