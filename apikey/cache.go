package apikey

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/ratelimit"
	"github.com/keygate/keygate/apikey/store"
	"golang.org/x/sync/singleflight"
)

// ErrStoreUnavailable is returned by keyCache.Lookup when the store could not
// answer and nothing usable was cached: the key may well be valid, so the
// caller must not be told it is not.
var ErrStoreUnavailable = errors.New("key store unavailable")

// errNotCached is keyCache.cached's answer for a key with no usable entry:
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

// keyCache answers key lookups from memory, in front of a KeyStore, with
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
type keyCache struct {
	// read reads a key from the store; prev is the key as last read, nil
	// for a key not cached.
	read    func(ctx context.Context, id string, prev *store.Key) (store.Key, error)
	found   *expirable.LRU[keyformat.Digest, *cacheEntry]
	missing *expirable.LRU[keyformat.Digest, time.Time] // when each was read
	unknown *ratelimit.UnknownKeys
	// owners holds the plans of the owners of the keys found.
	owners *ownerPlans
	group  singleflight.Group

	// flights are the refreshes under way, so that Forget can tell one of
	// its key not to cache what it read. There is at most one per key that
	// has not been forgotten, so the map is bounded by the keys being read.
	mu      sync.Mutex
	flights map[keyformat.Digest]*flight
	bg      sync.WaitGroup // background refreshes; tests wait on it

	now      func() time.Time
	log      *slog.Logger
	fresh    time.Duration
	stale    time.Duration
	negative time.Duration
	wait     time.Duration // the longest a request waits for a read
	// defaultScopes are granted to keys stored without scopes.
	defaultScopes []string
}

// flight is one refresh under way.
type flight struct{ forgotten bool }

// cacheEntry is one cached key. Entries are never changed once in the LRU,
// except nextTry, which is atomic, so readers need no lock.
type cacheEntry struct {
	cache   *keyCache // the cache that holds it, and so the Gate
	key     store.Key // the key, when found
	scopes  []string  // the scopes it grants: its own, or the defaults
	found   bool      // whether the store had the key
	fetched time.Time
	owner   *ownerRef // the key's owner's plan, when found
	// nextTry is the Unix time in nanoseconds before which no background
	// refresh of this entry starts; a request claims a refresh by moving it
	// storeRetryBackoff ahead.
	nextTry atomic.Int64
}

// cacheLife is the longest a found key is kept, and so the longest it is
// used without a refresh: past the fresh and stale windows.
func cacheLife(cfg Config) time.Duration {
	return max(cfg.CacheTTL, cfg.StaleTTL) + storeRetryBackoff
}

// newKeyCache returns a cache with cfg's size and windows that reads keys
// with read and their owners' plans into owners; now is its clock and log
// receives its warnings.
func newKeyCache(cfg Config, read func(context.Context, string, *store.Key) (store.Key, error), owners *ownerPlans, now func() time.Time, log *slog.Logger) *keyCache {
	return &keyCache{
		read:     read,
		found:    expirable.NewLRU[keyformat.Digest, *cacheEntry](cfg.CacheSize, nil, cacheLife(cfg)),
		missing:  expirable.NewLRU[keyformat.Digest, time.Time](negativeCacheSize, nil, cfg.NegativeTTL+storeRetryBackoff),
		unknown:  ratelimit.NewUnknownKeys(ratelimit.DefaultUnknownKeyLimits),
		owners:   owners,
		flights:  make(map[keyformat.Digest]*flight),
		now:      now,
		log:      log,
		fresh:    cfg.CacheTTL,
		stale:    cfg.StaleTTL,
		negative: cfg.NegativeTTL,
		wait:     cfg.StoreTimeout,

		defaultScopes: cfg.DefaultScopes,
	}
}

// Lookup returns the key with digest d, ErrKeyNotFound, or an error wrapping
// ErrStoreUnavailable. The key returned is shared: do not modify it. Lookup
// does not check expiry or revocation; Key.Status does, at the caller's time.
// Its store reads are not charged to any client address: the middleware's
// are.
func (c *keyCache) Lookup(ctx context.Context, d keyformat.Digest) (*store.Key, error) {
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
func (c *keyCache) cached(d keyformat.Digest, now time.Time) (*cacheEntry, error) {
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
		return nil, store.ErrKeyNotFound
	}
	return nil, errNotCached
}

// revalidate refreshes the key with digest d in the background. It is apart
// from cached because its closure moves d to the heap: in cached, that would
// cost every cache hit, fresh or stale, an allocation.
func (c *keyCache) revalidate(d keyformat.Digest) {
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
func (c *keyCache) load(ctx context.Context, d keyformat.Digest, now time.Time, addr string) (*cacheEntry, error) {
	timer := time.NewTimer(c.wait)
	defer timer.Stop()
	for try := 0; ; try++ {
		ch := c.group.DoChan(string(d[:]), func() (any, error) { return c.chargedRefresh(d, now, addr) })
		select {
		case res := <-ch:
			if res.Err != nil {
				// The read this lookup joined was refused for another
				// address's budget, not this one's: make its own, once.
				if ue, ok := errors.AsType[*ratelimit.UnknownKeysError](res.Err); ok && ue.Addr != addr && try == 0 {
					continue
				}
				return nil, res.Err
			}
			return res.Val.(*cacheEntry).result()
		case <-timer.C:
			return nil, fmt.Errorf("%w: no answer within %v: %w", ErrStoreUnavailable, c.wait, context.DeadlineExceeded)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, ctx.Err())
		}
	}
}

// chargedRefresh is refresh for a lookup from the client address addr ("" for
// none): a key this cache has never found is charged to addr before the
// read, and refunded if it exists, so only unknown keys (and failed reads)
// use the budget (see unknownKeys).
func (c *keyCache) chargedRefresh(d keyformat.Digest, now time.Time, addr string) (*cacheEntry, error) {
	var charge *ratelimit.Charge
	if _, known := c.found.Peek(d); addr != "" && !known {
		var err error
		if charge, err = c.unknown.Charge(addr, now); err != nil {
			return nil, err
		}
	}
	e, err := c.refresh(d)
	if err == nil && e.found {
		charge.Refund(c.now())
	}
	return e, err
}

// Forget drops the cached lookup of the key with the given ID, so that the
// next lookup asks the store. A refresh of that key already under way when
// Forget is called does not cache what it read, which may predate the change
// that called Forget; refreshes of other keys are not affected.
func (c *keyCache) Forget(id string) {
	var d keyformat.Digest
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

// Purge drops every cached lookup, as Forget drops one: refreshes under way
// do not cache what they read.
func (c *keyCache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for d, f := range c.flights {
		f.forgotten = true
		c.group.Forget(string(d[:]))
	}
	c.found.Purge()
	c.missing.Purge()
}

// Len returns the number of keys found that are cached.
func (c *keyCache) Len() int { return c.found.Len() }

// refresh asks the store for the key and caches the answer. Its deadline is
// the store timeout, whoever waits for it: a request that gives up does not
// cut short a read that other requests, or the cache, still want.
func (c *keyCache) refresh(d keyformat.Digest) (*cacheEntry, error) {
	f := &flight{}
	c.mu.Lock()
	c.flights[d] = f
	c.mu.Unlock()

	ctx := context.Background() // every store call has its own deadline
	var prev *store.Key
	if old, ok := c.found.Peek(d); ok {
		prev = &old.key
	}
	k, err := c.read(ctx, d.ID(), prev)
	now := c.now()
	e := &cacheEntry{cache: c, key: k, found: err == nil, fetched: now}
	if e.found {
		e.owner = c.owners.ref(k.Owner)
		e.scopes = grantedScopes(&k, c.defaultScopes)
	}
	ok := err == nil || errors.Is(err, store.ErrKeyNotFound)
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

// servesStale reports whether e may be served at now although it is no
// longer fresh: a found key inside the stale window.
func (c *keyCache) servesStale(e *cacheEntry, now time.Time) bool {
	return e.found && now.Before(e.fetched.Add(c.stale))
}

func (e *cacheEntry) result() (*cacheEntry, error) {
	if !e.found {
		return nil, store.ErrKeyNotFound
	}
	return e, nil
}

// grants reports whether the key grants scope.
func (e *cacheEntry) grants(scope string) bool { return slices.Contains(e.scopes, scope) }

// grantedScopes are the scopes k grants: its own, or defaults when it has
// none.
func grantedScopes(k *store.Key, defaults []string) []string {
	if len(k.Scopes) == 0 {
		return defaults
	}
	return k.Scopes
}
