package store

import (
	"context"
	"errors"
	"time"
)

// MaxGetMany is the most IDs LeakStore.GetMany reads at once: one batched
// read per 100 tokens of a secret scanning message.
const MaxGetMany = 100

// LeakStore is what a secret scanning report needs of a store: many keys
// read at once, and where a key was found in public recorded on it.
type LeakStore interface {
	// GetMany returns the stored keys among ids (1 to MaxGetMany, repeats
	// allowed), in any order, in one read; IDs without a key are left out.
	GetMany(ctx context.Context, ids []string) ([]Key, error)
	// RecordLeak sets the key's LeakedAt to at and its LeakURL to url,
	// unless a leak is recorded already (the first one is kept), and
	// returns the key as stored; ErrKeyNotFound if there is none. It does
	// not revoke the key: Revoke does, and records the change for the
	// other instances.
	RecordLeak(ctx context.Context, id string, at time.Time, url string) (Key, error)
}

func (t timeoutStore) GetMany(ctx context.Context, ids []string) ([]Key, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.GetMany(ctx, ids)
}

func (t timeoutStore) RecordLeak(ctx context.Context, id string, at time.Time, url string) (Key, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.RecordLeak(ctx, id, at, url)
}

// RecordLeak answers the key as stored once a leak is recorded on it, by
// this call or an earlier one, as LeakStore.RecordLeak does.
func (c confirmStore) RecordLeak(ctx context.Context, id string, at time.Time, url string) (Key, error) {
	return confirm(ctx, c, "record leak", func(ctx context.Context) (Key, error) { return c.Store.RecordLeak(ctx, id, at, url) },
		func(ctx context.Context) (Key, bool, error) {
			k, err := c.Store.Get(ctx, id)
			if errors.Is(err, ErrKeyNotFound) {
				return Key{}, false, nil
			}
			return k, err == nil && !k.LeakedAt.IsZero(), err
		})
}
