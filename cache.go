package keygate

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
)

// ErrStoreUnavailable is returned by KeyCache.Lookup when the store could not
// answer and nothing usable was cached: the key may well be valid, so the
// caller must not be told it is not.
var ErrStoreUnavailable = errors.New("key store unavailable")

// errNotCached is KeyCache.cached's answer for a key with no usable entry:
// the caller must load it, and wait for the store.
var errNotCached = errors.New("key not cached")

// storeRetryBackoff is the least time between two background refreshes of
// one key, so a failing store is asked about a key at most once a second; it
// is also the Retry-After of a 503.
const storeRetryBackoff = time.Second

// negativeCacheSize bounds the LRU of keys not found. It is apart from the
// LRU of keys found, so that no flood of unknown keys can evict a valid key
// (which would then be refused in an outage instead of served stale). The
// instance ceiling on unknown-key reads (unknownkeys.go) adds at most
// 100 + 50/s × 30 s = 1,600 entries per default KEY_NEGATIVE_TTL, so 10,000
// (about 1.5 MB) is never the limit with the defaults.
const negativeCacheSize = 10_000

// KeyCache answers key lookups from memory, in front of a KeyStore, with
// explicit fresh and stale windows on an injected clock (as Unkey's cache):
//
//   - A found key is fresh for the cache TTL: no store call.
//   - Past that and inside the stale TTL it is still served at once, and a
//     background refresh is started: one per key at a time (singleflight),
//     at most one a second per key (storeRetryBackoff), each with its own
//     deadline, the store timeout. A successful refresh replaces the entry;
//     a failed one is logged at WARNING and the entry is served on.
//   - A not-found key is not found for the negative TTL; after that it is
//     read again before the request is answered, so a key created since is
//     never refused for longer than that.
//   - Only a key with no usable entry waits for the store, at most the store
//     timeout, and gets ErrStoreUnavailable if it does not answer. Such reads
//     of keys that turn out not to exist are limited per client address
//     (unknownKeys).
//
// Found and not-found keys live in two LRUs (see negativeCacheSize). The
// LRUs' own expiry, in wall time, only frees memory: it is longer than every
// window.
type KeyCache struct {
	store KeyStore
	// With a meter (set by NewServer), a refresh of a key with a monthly
	// quota also reads its month total, for the meter.
	meter   *Meter
	found   *expirable.LRU[KeyDigest, *cacheEntry]
	missing *expirable.LRU[KeyDigest, time.Time] // when each was read
	unknown *unknownKeys
	// owners holds the plans of the owners of the keys found.
	owners *ownerPlans
	// both, when the store is a KeyReader, reads a key with a quota and its
	// month total in one round trip.
	both  KeyReader
	group singleflight.Group

	// flights are the refreshes under way, so that Forget can tell one of
	// its key not to cache what it read. There is at most one per key that
	// has not been forgotten, so the map is bounded by the keys being read.
	mu      sync.Mutex
	flights map[KeyDigest]*flight
	bg      sync.WaitGroup // background refreshes; tests wait on it

	now      func() time.Time
	log      *slog.Logger
	fresh    time.Duration
	stale    time.Duration
	negative time.Duration
	timeout  time.Duration
}

// flight is one refresh under way.
type flight struct{ forgotten bool }

// cacheEntry is one cached key. Entries are never changed once in the LRU,
// except nextTry, which is atomic, so readers need no lock.
type cacheEntry struct {
	key     Key  // the key, when found
	found   bool // whether the store had the key
	fetched time.Time
	owner   *ownerRef // the key's owner's plan, when found
	// nextTry is the Unix time in nanoseconds before which no background
	// refresh of this entry starts; a request claims a refresh by moving it
	// storeRetryBackoff ahead.
	nextTry atomic.Int64
}

// keyReaderOf is store as a KeyReader, or nil.
func keyReaderOf(store KeyStore) KeyReader {
	r, _ := store.(KeyReader)
	return r
}

// plansOf is store as a PlanStore, or nil if it keeps no plans.
func plansOf(store KeyStore) PlanStore {
	p, _ := store.(PlanStore)
	return p
}

// cacheLife is the longest a found key is kept, and so the longest it is
// used without a refresh: past the fresh and stale windows.
func cacheLife(cfg Config) time.Duration {
	return max(cfg.CacheTTL, cfg.StaleTTL) + storeRetryBackoff
}

// NewKeyCache returns a cache over store with cfg's size and windows; now is
// its clock and log receives its warnings.
func NewKeyCache(cfg Config, store KeyStore, now func() time.Time, log *slog.Logger) *KeyCache {
	return &KeyCache{
		store:    store,
		found:    expirable.NewLRU[KeyDigest, *cacheEntry](cfg.CacheSize, nil, cacheLife(cfg)),
		missing:  expirable.NewLRU[KeyDigest, time.Time](negativeCacheSize, nil, cfg.NegativeTTL+storeRetryBackoff),
		unknown:  newUnknownKeys(defaultUnknownKeyLimits),
		owners:   newOwnerPlans(cfg, plansOf(store), now, log),
		both:     keyReaderOf(store),
		flights:  make(map[KeyDigest]*flight),
		now:      now,
		log:      log,
		fresh:    cfg.CacheTTL,
		stale:    cfg.StaleTTL,
		negative: cfg.NegativeTTL,
		timeout:  cfg.StoreTimeout,
	}
}

// Lookup returns the key with digest d, ErrKeyNotFound, or an error wrapping
// ErrStoreUnavailable. The key returned is shared: do not modify it. Lookup
// does not check expiry or revocation; Key.Status does, at the caller's time.
// Its store reads are not charged to any client address: the middleware's
// are.
func (c *KeyCache) Lookup(ctx context.Context, d KeyDigest) (*Key, error) {
	now := c.now()
	e, err := c.cached(d, now)
	if err == errNotCached {
		e, err = c.load(ctx, d, now, "")
	}
	if err != nil {
		return nil, err
	}
	return &e.key, nil
}

// cached answers from memory: the key's entry when it is fresh or may be
// served stale (then starting a background refresh), ErrKeyNotFound inside
// the negative window, and errNotCached otherwise. It never waits and, on a
// fresh entry, never allocates.
func (c *KeyCache) cached(d KeyDigest, now time.Time) (*cacheEntry, error) {
	if e, ok := c.found.Get(d); ok {
		if now.Before(e.fetched.Add(c.fresh)) {
			return e, nil
		}
		if c.servesStale(e, now) {
			if claimTry(&e.nextTry, now) {
				c.revalidate(d)
			}
			return e, nil
		}
		return nil, errNotCached
	}
	if at, ok := c.missing.Get(d); ok && now.Before(at.Add(c.negative)) {
		return nil, ErrKeyNotFound
	}
	return nil, errNotCached
}

// revalidate refreshes the key with digest d in the background. It is apart
// from cached because its closure moves d to the heap: in cached, that would
// cost every cache hit, fresh or stale, an allocation.
func (c *KeyCache) revalidate(d KeyDigest) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		c.group.Do(string(d[:]), func() (any, error) { return c.refresh(d) })
	}()
}

// load asks the store for the key with digest d and waits for the answer, at
// most the store timeout, sharing the read with concurrent lookups of the
// key. Only the request that makes the read is charged for it (see
// chargedRefresh): a burst of requests for one uncached key costs its client
// one token, not one per request.
func (c *KeyCache) load(ctx context.Context, d KeyDigest, now time.Time, addr string) (*cacheEntry, error) {
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	for try := 0; ; try++ {
		ch := c.group.DoChan(string(d[:]), func() (any, error) { return c.chargedRefresh(d, now, addr) })
		select {
		case res := <-ch:
			if res.Err != nil {
				// The read this lookup joined was refused for another
				// address's budget, not this one's: make its own, once.
				if ue, ok := errors.AsType[*unknownKeysError](res.Err); ok && ue.addr != addr && try == 0 {
					continue
				}
				return nil, res.Err
			}
			return res.Val.(*cacheEntry).result()
		case <-timer.C:
			return nil, fmt.Errorf("%w: no answer within %v", ErrStoreUnavailable, c.timeout)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, ctx.Err())
		}
	}
}

// chargedRefresh is refresh for a lookup from the client address addr ("" for
// none): a key this cache has never found is charged to addr before the
// read, and refunded if it exists, so only unknown keys (and failed reads)
// use the budget (see unknownKeys).
func (c *KeyCache) chargedRefresh(d KeyDigest, now time.Time, addr string) (*cacheEntry, error) {
	var charge *unknownKeyCharge
	if _, known := c.found.Peek(d); addr != "" && !known {
		var err error
		if charge, err = c.unknown.charge(addr, now); err != nil {
			return nil, err
		}
	}
	e, err := c.refresh(d)
	if err == nil && e.found {
		charge.refund(c.now())
	}
	return e, err
}

// Forget drops the cached lookup of the key with the given ID, so that the
// next lookup asks the store. A refresh of that key already under way when
// Forget is called does not cache what it read, which may predate the change
// that called Forget; refreshes of other keys are not affected.
func (c *KeyCache) Forget(id string) {
	var d KeyDigest
	if n, err := hex.Decode(d[:], []byte(id)); err != nil || n != len(d) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[d]; f != nil {
		f.forgotten = true
	}
	c.group.Forget(string(d[:]))
	c.found.Remove(d)
	c.missing.Remove(d)
}

// Len returns the number of keys found that are cached.
func (c *KeyCache) Len() int { return c.found.Len() }

// refresh asks the store for the key and caches the answer. Its deadline is
// the store timeout, whoever waits for it: a request that gives up does not
// cut short a read that other requests, or the cache, still want.
func (c *KeyCache) refresh(d KeyDigest) (*cacheEntry, error) {
	f := &flight{}
	c.mu.Lock()
	c.flights[d] = f
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	k, based, err := c.read(ctx, d)
	now := c.now()
	e := &cacheEntry{key: k, found: err == nil, fetched: now}
	if e.found {
		e.owner = c.owners.ref(k.Owner)
	}
	if err == nil && !based && k.MonthlyQuota > 0 && c.meter != nil {
		err = c.meter.ReadMonth(ctx, k.ID, now)
	}
	ok := err == nil || errors.Is(err, ErrKeyNotFound)
	c.mu.Lock()
	if c.flights[d] == f {
		delete(c.flights, d)
	}
	if ok && !f.forgotten {
		if e.found {
			c.missing.Remove(d)
			c.found.Add(d, e)
		} else {
			c.found.Remove(d)
			c.missing.Add(d, now)
		}
	}
	c.mu.Unlock()
	if ok {
		return e, nil
	}
	if old, ok := c.found.Peek(d); ok && c.servesStale(old, now) {
		c.log.LogAttrs(ctx, slog.LevelWarn, "key store unavailable: serving a stale cached key",
			slog.String("key_id", old.key.ID), slog.String("key_hint", old.key.Hint),
			slog.Duration("age", now.Sub(old.fetched)), slog.String("error", err.Error()))
		return old, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
}

// read reads the key with digest d. A key that had a quota of its own when
// last read is read with its month total, in one round trip, for the meter
// (based reports that); others cost one document.
func (c *KeyCache) read(ctx context.Context, d KeyDigest) (k Key, based bool, err error) {
	id := d.ID()
	if old, ok := c.found.Peek(d); ok && old.key.MonthlyQuota > 0 && c.both != nil && c.meter != nil {
		now := c.now()
		err = c.meter.ReadMonthWith(ctx, id, now, func(ctx context.Context) (total int64, err error) {
			k, total, err = c.both.ReadKey(ctx, id, MonthOf(now))
			return total, err
		})
		return k, true, err
	}
	k, err = c.store.Get(ctx, id)
	return k, false, err
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
