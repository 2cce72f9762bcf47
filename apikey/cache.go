package apikey

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/swr"
)

// errStoreUnavailable is returned by the key and plan caches when the store
// could not answer and nothing usable was cached: the key may well be
// valid, so the caller must not be told it is not.
var errStoreUnavailable = errors.New("key store unavailable")

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
// instance ceiling on unknown-key reads (the request path's, protect.go)
// adds at most 100 + 50/s × 30 s = 1,600 entries per default
// KEY_NEGATIVE_TTL, so 10,000 (about 1.5 MB) is never the limit with the
// defaults.
const negativeCacheSize = 10_000

// env is what the parts of a Gate share: its clock and its logger, set
// once by New.
type env struct {
	now func() time.Time
	log *slog.Logger
}

// cacheOptions are the key cache's size and windows (Config's
// KEY_CACHE_SIZE, KEY_CACHE_TTL, KEY_STALE_TTL, KEY_NEGATIVE_TTL), the
// longest a request waits for a read (STORE_TIMEOUT), and the scopes of
// keys stored without any.
type cacheOptions struct {
	Size                   int
	Fresh, Stale, Negative time.Duration
	Wait                   time.Duration
	DefaultScopes          []string
}

// keyReader reads the key with id from the store; prev is the key as last
// read, nil for a key not cached.
type keyReader func(ctx context.Context, id string, prev *store.Key) (store.Key, error)

// keyCache answers key lookups from memory, in front of the store: a
// stale-while-revalidate cache (internal/swr) of keys by digest.
//
//   - A found key is fresh for the cache TTL: no store call.
//   - Past that and inside the stale TTL it is still served at once, and a
//     background refresh is started: one per key at a time, at most one a
//     second per key (storeRetryBackoff), each with its own deadline, the
//     store timeout. A successful refresh replaces the entry; a failed one
//     is logged at WARNING and the entry is served on.
//   - A not-found key is not found for the negative TTL; after that it is
//     read again before the request is answered, so a key created since is
//     never refused for longer than that.
//   - Only a key with no usable entry waits for the store, at most the store
//     timeout, and gets errStoreUnavailable if it does not answer.
//
// Found and not-found keys live in two LRUs (see negativeCacheSize).
type keyCache struct {
	entries *swr.Cache[keyformat.Digest, *cacheEntry]
	// refresh reads with the cache's own reader. It is made once: a func
	// value made per call would cost every cache hit an allocation.
	refresh swr.Refresh[keyformat.Digest, *cacheEntry]
	now     func() time.Time
	// defaultScopes are granted to keys stored without scopes.
	defaultScopes []string
}

// cacheEntry is one cached key, found. It is never changed once cached,
// but for plan, which is atomic.
type cacheEntry struct {
	key    store.Key
	scopes []string // the scopes it grants: its own, or the defaults
	// plan is the owner's plan as last found (ownerPlans.plan).
	plan swr.Handle[*store.Plan]
}

// cacheLife is the longest a found key is kept, and so the longest it is
// used without a refresh: past the fresh and stale windows.
func cacheLife(cfg Config) time.Duration {
	return max(cfg.CacheTTL, cfg.StaleTTL) + storeRetryBackoff
}

// newKeyCache returns a cache with opt's size and windows that reads keys
// with read.
func newKeyCache(e env, opt cacheOptions, read keyReader) *keyCache {
	c := &keyCache{
		entries: swr.New[keyformat.Digest, *cacheEntry](swr.Options{
			Size: opt.Size, Misses: negativeCacheSize,
			Fresh: opt.Fresh, Stale: opt.Stale, Negative: opt.Negative,
			Backoff: storeRetryBackoff, Wait: opt.Wait, Now: e.now,
		}),
		now:           e.now,
		defaultScopes: opt.DefaultScopes,
	}
	c.refresh = c.refreshWith(read)
	c.entries.ServeStale = func(_ keyformat.Digest, old *cacheEntry, age time.Duration, err error) {
		e.log.LogAttrs(context.Background(), slog.LevelWarn, "key store unavailable: serving a stale cached key",
			slog.String("key_id", old.key.ID), slog.String("key_hint", old.key.Hint),
			slog.Duration("age", age), slog.String("error", err.Error()))
	}
	return c
}

// refreshWith is the cache's refresh with read.
func (c *keyCache) refreshWith(read keyReader) swr.Refresh[keyformat.Digest, *cacheEntry] {
	return func(ctx context.Context, d keyformat.Digest, prev **cacheEntry) (*cacheEntry, bool, error) {
		var pk *store.Key
		if prev != nil {
			pk = &(*prev).key
		}
		k, err := read(ctx, d.ID(), pk)
		if errors.Is(err, store.ErrKeyNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		return &cacheEntry{key: k, scopes: grantedScopes(&k, c.defaultScopes)}, true, nil
	}
}

// Lookup returns the key with digest d, ErrKeyNotFound, or an error wrapping
// errStoreUnavailable. The key returned is shared: do not modify it. Lookup
// does not check expiry or revocation; Key.Status does, at the caller's time.
// Its store reads are not charged to any client address: the request
// path's are.
func (c *keyCache) Lookup(ctx context.Context, d keyformat.Digest) (*store.Key, error) {
	e, err := c.cached(d, c.now())
	if err == errNotCached {
		e, err = c.load(ctx, d, nil)
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
	e, hit, found := c.entries.Cached(d, now, c.refresh)
	switch {
	case !hit:
		return nil, errNotCached
	case !found:
		return nil, store.ErrKeyNotFound
	}
	return e, nil
}

// load reads the key with digest d with read (nil: the cache's reader), and
// waits for the answer, at most the store timeout, sharing the read with
// concurrent lookups of the key: only the first one's read is made.
func (c *keyCache) load(ctx context.Context, d keyformat.Digest, read keyReader) (*cacheEntry, error) {
	refresh := c.refresh
	if read != nil {
		refresh = c.refreshWith(read)
	}
	e, found, err := c.entries.Load(ctx, d, refresh)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errStoreUnavailable, err)
	case !found:
		return nil, store.ErrKeyNotFound
	}
	return e, nil
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
	c.entries.Forget(d)
}

// Revalidate has every cached key read again before its next use, without
// dropping it: the read is that of a key the Gate knew (not charged to the
// unknown-key budget), and if it fails the cached key is served within
// KEY_STALE_TTL. Keys not found are forgotten. Refreshes under way do not
// cache what they read.
func (c *keyCache) Revalidate() { c.entries.Revalidate() }

// Len returns the number of keys found that are cached.
func (c *keyCache) Len() int { return c.entries.Len() }

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
