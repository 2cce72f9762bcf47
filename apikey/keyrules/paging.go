package keyrules

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// ListOrder is the order in which KeyStore.ListByOwner pages an owner's
// keys: newest first (CreatedAt descending), then by ID descending. In
// Firestore it is the order of the composite index in firestore.indexes.json:
// owner ascending, created_at descending and, implied, the document ID
// descending.
func ListOrder(a, b store.Key) int {
	return PositionOf(a).Compare(PositionOf(b))
}

// PositionOf is the position of k, for the page that follows k.
func PositionOf(k store.Key) store.PagePosition {
	return store.PagePosition{CreatedAt: store.StoredTime(k.CreatedAt), ID: k.ID}
}

// The times a page position may hold: those Firestore keeps, from
// 0001-01-01 to 9999-12-31 UTC. A position outside is no key's, and
// Firestore refuses it, which would be a 503, not the caller's 400.
var (
	minPageTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxPageTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// ValidPagePosition reports whether p is a position a page can start after:
// a time Firestore keeps (the ID is the caller's to check).
func ValidPagePosition(p store.PagePosition) bool {
	return !p.CreatedAt.Before(minPageTime) && !p.CreatedAt.After(maxPageTime)
}

// CheckPageLimit checks ListByOwner's limit: 1 to store.MaxPageLimit.
func CheckPageLimit(limit int) error {
	if limit < 1 || limit > store.MaxPageLimit {
		return fmt.Errorf("list keys: limit %d: want 1 to %d", limit, store.MaxPageLimit)
	}
	return nil
}

// PageOf makes the page of limit keys from up to limit+1 keys read in
// ListOrder: the extra key, when there is one, only tells that more follow.
func PageOf(keys []store.Key, limit int) store.KeyPage {
	if keys == nil {
		keys = []store.Key{}
	}
	if len(keys) <= limit {
		return store.KeyPage{Keys: keys}
	}
	keys = keys[:limit]
	next := PositionOf(keys[limit-1])
	return store.KeyPage{Keys: keys, Next: &next}
}

// OwnerKeys returns all the owner's keys in ListOrder, reading pageSize
// (1 to store.MaxPageLimit) at a time; it stops at the first error, which it
// yields last. An owner with n keys costs about n + n/pageSize reads.
func OwnerKeys(ctx context.Context, s store.KeyStore, owner string, pageSize int) iter.Seq2[store.Key, error] {
	return func(yield func(store.Key, error) bool) {
		var after *store.PagePosition
		for {
			page, err := s.ListByOwner(ctx, owner, after, pageSize)
			if err != nil {
				yield(store.Key{}, err)
				return
			}
			for _, k := range page.Keys {
				if !yield(k, nil) {
					return
				}
			}
			if page.Next == nil {
				return
			}
			after = page.Next
		}
	}
}
