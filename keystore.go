package keygate

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Errors a KeyStore returns; compare with errors.Is. Any other error means
// the store could not answer (unavailable, timed out).
var (
	// ErrKeyNotFound: no key has the ID.
	ErrKeyNotFound = errors.New("key not found")
	// ErrKeyExists: Create was given an ID that is already taken.
	ErrKeyExists = errors.New("key already exists")
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
}

// Status is the key's state at time now: "active", "expired" or "revoked".
func (k *Key) Status(now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero() && !now.Before(k.RevokedAt):
		return "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}

// KeyStore keeps keys by ID. Implementations bound every call by their own
// deadline, so a store that is down returns an error instead of hanging.
type KeyStore interface {
	// Get returns the key with the given ID, or ErrKeyNotFound.
	Get(ctx context.Context, id string) (Key, error)
	// Create stores a new key, or returns ErrKeyExists.
	Create(ctx context.Context, k Key) error
	// ListByOwner returns the owner's keys, newest first (ties by ID).
	ListByOwner(ctx context.Context, owner string) ([]Key, error)
	// Revoke sets the key's RevokedAt to at, unless it is already revoked,
	// and returns the key as stored; ErrKeyNotFound if there is none.
	Revoke(ctx context.Context, id string, at time.Time) (Key, error)
	// Delete removes the key; ErrKeyNotFound if there is none.
	Delete(ctx context.Context, id string) error
}

// storedKey is k as every store keeps it: times in UTC to the microsecond
// (Firestore's precision) and Scopes never nil, so that all stores give back
// equal keys.
func storedKey(k Key) Key {
	k.CreatedAt = storedTime(k.CreatedAt)
	if !k.ExpiresAt.IsZero() {
		k.ExpiresAt = storedTime(k.ExpiresAt)
	}
	if !k.RevokedAt.IsZero() {
		k.RevokedAt = storedTime(k.RevokedAt)
	}
	k.Scopes = slices.Clone(k.Scopes)
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	return k
}

// storedTime is t as stores keep it: UTC, to the microsecond.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
