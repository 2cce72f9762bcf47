package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// Errors a KeyStore returns; compare with errors.Is. Any other error means
// the store could not answer (unavailable, timed out).
var (
	// ErrKeyNotFound: no key has the ID.
	ErrKeyNotFound = errors.New("key not found")
	// ErrKeyExists: Create was given an ID that is already taken.
	ErrKeyExists = errors.New("key already exists")
	// ErrKeyInactive: Rotate was asked to replace a revoked or expired key.
	ErrKeyInactive = errors.New("key is revoked or expired")
	// ErrKeyReplaced: Rotate was asked to replace a key that a rotation
	// replaced already, whose replacement is still active. Rotating it
	// again would give it a second active successor, and rotating each
	// key in its grace again would pile up active keys (see RotateCapped):
	// rotate the replacement instead, or revoke it first.
	ErrKeyReplaced = errors.New("key was replaced by a rotation already")
)

// Key is a stored API key: everything about it except the key itself, which
// is never stored.
type Key struct {
	// ID is the lowercase hex SHA-256 of the key string.
	ID string `json:"id"`
	// Owner is the customer the key belongs to.
	Owner string `json:"owner"`
	// Name is a label the owner chose.
	Name string `json:"name"`
	// Scopes are the permissions the key grants.
	Scopes []string `json:"scopes"`
	// Hint shows the key's first and last characters, for people to
	// recognise it.
	Hint string `json:"hint"`
	// CreatedAt is when the key was minted.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the key stops working; zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RevokedAt is when the key was revoked; zero means it is active.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// RateLimit is the key's sustained rate in requests per second on each
	// instance, and Burst the requests it may make at once; zero means
	// DEFAULT_RATE_LIMIT and DEFAULT_BURST (none, unless set).
	RateLimit float64 `json:"rate_limit,omitzero"`
	Burst     int     `json:"burst,omitzero"`
	// MonthlyQuota is the number of requests the key may make per UTC
	// calendar month; zero means no quota.
	MonthlyQuota int64 `json:"monthly_quota,omitzero"`
	// LastUsedAt is when the key was last used, as the usage flush records
	// it (see UsageStore.AddUsage): zero if it has not been since keygate
	// records it. It is the time of the flush, so it trails the last
	// request by up to the flush interval.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// ReplacedBy is the ID of the key that rotating this one minted, set by
	// Rotate; empty if it was never rotated.
	ReplacedBy string `json:"replaced_by,omitzero"`
	// CreatedBy is the ID of the key that made this one through the keys
	// API (its create or its rotation, the rotated key itself when it
	// rotated itself); empty for a key the operator made (the CLI) or one
	// stored before keygate recorded it. It bounds what a leaked key did:
	// keyrules.Descendants follows it.
	CreatedBy string `json:"created_by,omitzero"`
	// LeakedAt is when the key was reported found in public (GitHub secret
	// scanning: RecordLeak), and LeakURL where; zero and empty if never.
	LeakedAt time.Time `json:"leaked_at,omitzero"`
	LeakURL  string    `json:"leak_url,omitzero"`
}

// Status is a key's state at a time: StatusActive, StatusExpired or
// StatusRevoked.
type Status string

// The states of a key.
const (
	StatusActive  Status = "active"
	StatusExpired Status = "expired"
	StatusRevoked Status = "revoked"
)

// Status is the key's state at time now. Revocation wins over expiry.
func (k *Key) Status(now time.Time) Status {
	switch {
	case !k.RevokedAt.IsZero() && !now.Before(k.RevokedAt):
		return StatusRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StatusExpired
	}
	return StatusActive
}

// KeyStore keeps keys by ID. Every call honours its context: a store that
// is down returns an error once the context ends, never hangs past it
// (WithTimeout gives every call a deadline). One bounded exception: a
// write that has sent its commit may wait for the commit's answer past the
// context's end (firestorestore: as long again), since a read-back made
// while the commit still travels proves nothing (see ConfirmWrites).
type KeyStore interface {
	// Get returns the key with the given ID, or ErrKeyNotFound.
	Get(ctx context.Context, id string) (Key, error)
	// Create stores a new key, or returns ErrKeyExists.
	Create(ctx context.Context, k Key) error
	// ListByOwner returns one page of the owner's keys in keyrules.ListOrder
	// (the order of PagePosition.Compare): at most limit (at least 1) keys,
	// the first being the one just after after (nil: the newest key). The page's Next is set when more keys follow. It reads
	// at most limit+1 keys, however many the owner has.
	ListByOwner(ctx context.Context, owner string, after *PagePosition, limit int) (KeyPage, error)
	// Revoke sets the key's RevokedAt to at, unless it is already revoked,
	// and returns the key as stored; ErrKeyNotFound if there is none.
	Revoke(ctx context.Context, id string, at time.Time) (Key, error)
	// Delete removes the key; ErrKeyNotFound if there is none.
	Delete(ctx context.Context, id string) error
	// Rotate replaces the key with the given ID: in one transaction it
	// stores replacement and moves the old key's expiry to graceEnd, unless
	// it expires earlier already, and sets the old key's ReplacedBy to the
	// replacement's ID. It returns the old key as stored;
	// ErrKeyNotFound if there is none, ErrKeyInactive if it is revoked or
	// expired at replacement.CreatedAt, ErrKeyReplaced if it was replaced
	// already and that replacement is active at replacement.CreatedAt (a
	// replacement revoked, expired or deleted, say after a rotation whose
	// new key was lost, lets it be rotated again). Rotate does not cap the
	// owner's keys: RotateCapped does.
	Rotate(ctx context.Context, id string, replacement Key, graceEnd time.Time) (Key, error)
	// RotateCapped rotates as Rotate does, unless the owner holds more
	// than maxActive keys active at replacement.CreatedAt (keys in a
	// rotation's grace count) and the rotation has a grace (see keyrules.Capped):
	// then it stores nothing and returns ErrKeyLimitReached. An owner within its cap may thus go one key over
	// it, by the replacement of one rotation in progress, and no further:
	// until that grace ends (or a key is revoked or deleted), every other
	// rotation is refused, and the replaced key itself cannot be rotated
	// again (ErrKeyReplaced). The count and the rotation are atomic, as in
	// CreateCapped; it returns ErrInvalidOwner for an owner keyrules.ValidateOwner
	// refuses.
	RotateCapped(ctx context.Context, id string, replacement Key, graceEnd time.Time, maxActive int) (Key, error)
	// CreateCapped stores a new key as Create does, unless its owner holds
	// maxActive or more keys active at now (neither revoked nor expired):
	// then it stores nothing and returns ErrKeyLimitReached. The count and
	// the create are atomic, so concurrent calls never exceed the cap. It
	// returns ErrInvalidOwner for an owner keyrules.ValidateOwner refuses.
	CreateCapped(ctx context.Context, k Key, maxActive int, now time.Time) error
}

// PagePosition is a place in an owner's keys in keyrules.ListOrder: that of the key
// with this creation time and ID, whether or not that key still exists. A
// page that starts after it holds the keys that sort after it.
type PagePosition struct {
	CreatedAt time.Time
	ID        string
}

// Compare orders positions as keyrules.ListOrder orders keys: newest
// first (CreatedAt descending), then by ID descending.
func (p PagePosition) Compare(q PagePosition) int {
	if c := q.CreatedAt.Compare(p.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(q.ID, p.ID)
}

// KeyPage is a page of an owner's keys.
type KeyPage struct {
	// Keys are the page's keys in keyrules.ListOrder; empty, never nil, when none.
	Keys []Key
	// Next is the position of the page's last key when more keys follow it,
	// and nil on the last page.
	Next *PagePosition
}

// MaxPageLimit is the most keys ListByOwner returns at once.
const MaxPageLimit = 1000

// KeyReader is a store that reads a key and its usage total of a month in
// one round trip. Both keygate stores are KeyReaders; the key cache uses it
// to refresh a key with a quota of its own.
type KeyReader interface {
	ReadKey(ctx context.Context, id string, month Month) (k Key, monthTotal int64, err error)
}

// Stored is k as every store keeps it: times in UTC to the microsecond
// (Firestore's precision) and Scopes never nil, so that all stores give back
// equal keys.
func Stored(k Key) Key {
	k.CreatedAt = StoredTime(k.CreatedAt)
	if !k.ExpiresAt.IsZero() {
		k.ExpiresAt = StoredTime(k.ExpiresAt)
	}
	if !k.RevokedAt.IsZero() {
		k.RevokedAt = StoredTime(k.RevokedAt)
	}
	if !k.LastUsedAt.IsZero() {
		k.LastUsedAt = StoredTime(k.LastUsedAt)
	}
	if !k.LeakedAt.IsZero() {
		k.LeakedAt = StoredTime(k.LeakedAt)
	}
	k.Scopes = slices.Clone(k.Scopes)
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	return k
}

// StoredTime is t as stores keep it: UTC, to the microsecond.
func StoredTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
