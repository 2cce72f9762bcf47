package keygate

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
)

// ErrStoreUnavailable is returned by KeyCache.Lookup when the store could not
// answer and nothing usable was cached: the key may well be valid, so the
// caller must not be told it is not.
var ErrStoreUnavailable = errors.New("key store unavailable")

// storeRetryBackoff is how long, after a failed refresh, a key is served
// from its stale entry without asking the store again; it is also the
// Retry-After of a 503.
const storeRetryBackoff = time.Second

// KeyCache answers key lookups from memory: one expirable LRU of found and
// not-found results in front of a KeyStore.
//
//   - A found key is fresh for the cache TTL: no store call.
//   - A not-found key is fresh for the negative TTL.
//   - After that, the next lookup refreshes it from the store; concurrent
//     lookups of one key share one store call.
//   - If the refresh fails, a key found less than the stale TTL ago is still
//     served (stale-if-error), and the store is not asked again for
//     storeRetryBackoff; anything else is ErrStoreUnavailable.
//
// Time comes from an injected clock. The LRU's own expiry, in wall time, only
// frees memory: it is longer than every window.
type KeyCache struct {
	store KeyStore
	// With a meter (set by NewServer), a refresh of a key with a monthly
	// quota also reads its month total, for the meter.
	meter    *Meter
	lru      *expirable.LRU[KeyDigest, *cacheEntry]
	group    singleflight.Group
	forgets  atomic.Uint64 // Forget calls so far
	now      func() time.Time
	log      *slog.Logger
	fresh    time.Duration
	stale    time.Duration
	negative time.Duration
	timeout  time.Duration
}

// cacheEntry is one cached lookup. Entries are never changed once in the
// LRU, so readers need no lock.
type cacheEntry struct {
	key     Key  // the key, when found
	found   bool // whether the store had the key
	fetched time.Time
	// retryAt, after a failed refresh, is when the store may be asked again.
	retryAt time.Time
}

// NewKeyCache returns a cache over store with cfg's size and windows; now is
// its clock and log receives its warnings.
func NewKeyCache(cfg Config, store KeyStore, now func() time.Time, log *slog.Logger) *KeyCache {
	return &KeyCache{
		store:    store,
		lru:      expirable.NewLRU[KeyDigest, *cacheEntry](cfg.CacheSize, nil, cacheLife(cfg)),
		now:      now,
		log:      log,
		fresh:    cfg.CacheTTL,
		stale:    cfg.StaleTTL,
		negative: cfg.NegativeTTL,
		timeout:  cfg.StoreTimeout,
	}
}

// cacheLife is the longest an entry is kept, and so the longest a key is
// used without a refresh: past every window.
func cacheLife(cfg Config) time.Duration {
	return max(cfg.CacheTTL, cfg.StaleTTL, cfg.NegativeTTL) + storeRetryBackoff
}

// Lookup returns the key with digest d, ErrKeyNotFound, or an error wrapping
// ErrStoreUnavailable. The key returned is shared: do not modify it. Lookup
// does not check expiry or revocation; Key.Status does, at the caller's time.
func (c *KeyCache) Lookup(ctx context.Context, d KeyDigest) (*Key, error) {
	e, err := c.lookup(ctx, d, c.now())
	if err != nil {
		return nil, err
	}
	return &e.key, nil
}

// lookup is Lookup at time now (the caller's one clock reading for the
// request), returning the whole entry.
func (c *KeyCache) lookup(ctx context.Context, d KeyDigest, now time.Time) (*cacheEntry, error) {
	if e, ok := c.lru.Get(d); ok {
		if now.Before(e.fetched.Add(c.window(e))) {
			return e.result()
		}
		if now.Before(e.retryAt) && c.servesStale(e, now) {
			return e, nil
		}
	}
	return c.load(ctx, d)
}

// load asks the store for the key with digest d, sharing the call with
// concurrent lookups of the same key. It is apart from lookup because its
// closure moves d to the heap: in lookup, that would cost every cache hit
// an allocation.
func (c *KeyCache) load(ctx context.Context, d KeyDigest) (*cacheEntry, error) {
	ch := c.group.DoChan(string(d[:]), func() (any, error) {
		return c.refresh(context.WithoutCancel(ctx), d)
	})
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*cacheEntry).result()
	case <-timer.C:
		return nil, fmt.Errorf("%w: no answer within %v", ErrStoreUnavailable, c.timeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, ctx.Err())
	}
}

// Forget drops the cached lookup of the key with the given ID, so that the
// next lookup asks the store. A refresh already under way when Forget is
// called does not cache what it read, which may predate the change that
// called Forget.
func (c *KeyCache) Forget(id string) {
	var d KeyDigest
	if n, err := hex.Decode(d[:], []byte(id)); err == nil && n == len(d) {
		c.forgets.Add(1)
		c.group.Forget(string(d[:]))
		c.lru.Remove(d)
	}
}

// Len returns the number of cached lookups.
func (c *KeyCache) Len() int { return c.lru.Len() }

// refresh asks the store for the key and caches the answer.
func (c *KeyCache) refresh(ctx context.Context, d KeyDigest) (*cacheEntry, error) {
	forgets := c.forgets.Load()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	k, err := c.store.Get(ctx, d.ID())
	now := c.now()
	e := &cacheEntry{key: k, found: err == nil, fetched: now}
	if err == nil && k.MonthlyQuota > 0 && c.meter != nil {
		err = c.meter.ReadMonth(ctx, k.ID, now)
	}
	if err == nil || errors.Is(err, ErrKeyNotFound) {
		if c.forgets.Load() == forgets {
			c.lru.Add(d, e)
		}
		return e, nil
	}
	if old, ok := c.lru.Peek(d); ok && c.servesStale(old, now) {
		e := *old
		e.retryAt = now.Add(storeRetryBackoff)
		c.lru.Add(d, &e)
		c.log.LogAttrs(ctx, slog.LevelWarn, "key store unavailable: serving a stale cached key",
			slog.String("key_id", old.key.ID), slog.String("key_hint", old.key.Hint),
			slog.Duration("age", now.Sub(old.fetched)), slog.String("error", err.Error()))
		return &e, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
}

// window is how long after its fetch an entry is fresh.
func (c *KeyCache) window(e *cacheEntry) time.Duration {
	if e.found {
		return c.fresh
	}
	return c.negative
}

// servesStale reports whether e may be served at now although it is no
// longer fresh: a found key inside the stale window.
func (c *KeyCache) servesStale(e *cacheEntry, now time.Time) bool {
	return e.found && now.Before(e.fetched.Add(c.stale))
}

func (e *cacheEntry) result() (*cacheEntry, error) {
	if !e.found {
		return nil, ErrKeyNotFound
	}
	return e, nil
}
