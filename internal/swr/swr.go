// Package swr is a stale-while-revalidate cache, as Unkey's: a value is
// served from memory while fresh, then served on while a read in the
// background replaces it, and only a key with no usable value waits for
// the data source, which the caller passes on each call. The windows are
// explicit, the clock injected, and there is at most one read per key in
// flight. It knows nothing of what it caches.
package swr

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Options are a Cache's sizes, windows and clock.
type Options struct {
	// Size bounds the values kept, the least recently used dropped first.
	Size int
	// Misses bounds the keys not found kept. They are apart from the
	// values, so that no flood of unknown keys can evict a value (which
	// would then be lost in an outage instead of served stale).
	Misses int
	// Fresh is how long after its read a value is served without a read.
	Fresh time.Duration
	// Stale is how long after its read a value is served at all: past
	// Fresh, each request that finds it starts a read in the background.
	// Less than Fresh counts as Fresh.
	Stale time.Duration
	// Negative is how long after its read a key not found stays not found;
	// 0 remembers none.
	Negative time.Duration
	// Backoff is the least time between two background reads of one key,
	// so that a failing source is asked about a key at most once per
	// Backoff.
	Backoff time.Duration
	// Wait is the longest a caller waits for a read.
	Wait time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Refresh reads key's value from the data source; prev is the value last
// read, nil if there is none. found false means the source has no value
// for key. Its ctx has no deadline: the read must bound itself, since it
// outlives the callers that give up waiting (others, or the cache, still
// want its answer).
type Refresh[K comparable, V any] func(ctx context.Context, key K, prev *V) (v V, found bool, err error)

// Cache is a stale-while-revalidate cache of V by K.
//
// Its LRUs are golang-lru's expirable ones, whose expiry (in wall time,
// past every window) only frees memory; each runs a goroutine, for the
// life of the process, that deletes expired values. Build a Cache once per
// process, as the Gate that holds it.
type Cache[K comparable, V any] struct {
	// ServeStale, if set before the first Get, is told of each failed
	// read that leaves a value in service, stale, and of its age.
	ServeStale func(key K, v V, age time.Duration, err error)

	opt     Options
	found   *expirable.LRU[K, *entry[V]]
	missing *expirable.LRU[K, time.Time] // when each was read; nil without Negative

	// flights are the reads under way, one per key, so that callers share
	// them and Forget can tell one not to cache what it read. Bounded by
	// the keys being read.
	mu      sync.Mutex
	flights map[K]*flight[V]
	bg      sync.WaitGroup // reads; Wait waits for them
	// gen counts the calls of Revalidate: an entry read before the last
	// one (its gen older) is not served without a read.
	gen atomic.Uint64
}

// entry is one value. Entries are never changed once in the LRU, except
// nextTry, which is atomic, so readers need no lock.
type entry[V any] struct {
	v       V
	fetched time.Time
	gen     uint64 // Cache.gen when it was cached
	// nextTry is the Unix time in nanoseconds before which no background
	// read of this entry starts; a caller claims a read by moving it
	// Backoff ahead.
	nextTry atomic.Int64
	// gone is set when the entry leaves the LRU (evicted, expired,
	// replaced or forgotten): a Handle holding it looks the key up again.
	gone atomic.Bool
}

// A Handle is a key's entry as last found, to find it again without the
// LRU's lock while it stays cached: for a caller that looks one key up on
// every request (each key's owner's plan, on the Gate's hot path). A hit
// through a handle does not count as a use for the LRU: a value used only
// through handles is evicted as if unused, and then read again. The zero
// Handle is empty; it is safe for concurrent use.
type Handle[V any] struct{ e atomic.Pointer[entry[V]] }

// flight is one read under way.
type flight[V any] struct {
	done      chan struct{} // closed when e and err are set
	e         *entry[V]     // nil: not found
	err       error
	forgotten bool // guarded by Cache.mu
}

// New returns an empty Cache with opt's sizes and windows.
func New[K comparable, V any](opt Options) *Cache[K, V] {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	opt.Stale = max(opt.Stale, opt.Fresh)
	c := &Cache[K, V]{
		opt:     opt,
		found:   expirable.NewLRU(opt.Size, func(_ K, e *entry[V]) { e.gone.Store(true) }, opt.Stale+opt.Backoff),
		flights: make(map[K]*flight[V]),
	}
	if opt.Negative > 0 {
		c.missing = expirable.NewLRU[K, time.Time](opt.Misses, nil, opt.Negative+opt.Backoff)
	}
	return c
}

// Get returns key's value at now: at once while it is fresh; at once,
// with a read in the background, while it is stale; and otherwise after a
// read with refresh, waited for at most Wait (an error wrapping
// context.DeadlineExceeded past that) or until ctx ends. found is false
// for a key the source does not have. A failed read is refresh's error.
func (c *Cache[K, V]) Get(ctx context.Context, key K, now time.Time, refresh Refresh[K, V]) (v V, found bool, err error) {
	if v, hit, found := c.Cached(key, now, refresh); hit {
		return v, found, nil
	}
	return c.Load(ctx, key, refresh)
}

// Cached answers from memory, never waiting: hit is false when key has
// no usable value or not-found, and the caller must Load it. A stale
// value starts a background read with refresh, at most one per Backoff.
// A fresh hit does not allocate.
func (c *Cache[K, V]) Cached(key K, now time.Time, refresh Refresh[K, V]) (v V, hit, found bool) {
	if e, ok := c.found.Get(key); ok {
		if now.Before(e.fetched.Add(c.opt.Fresh)) && e.gen == c.gen.Load() { // the hit, inline
			return e.v, true, true
		}
		return c.serve(e, key, now, refresh)
	}
	return c.cachedMiss(key, now)
}

// GetVia is Get through h, which holds key's entry as last found: while
// that entry stays cached, no LRU lookup.
func (c *Cache[K, V]) GetVia(ctx context.Context, h *Handle[V], key K, now time.Time, refresh Refresh[K, V]) (v V, found bool, err error) {
	e := h.e.Load()
	if e == nil || e.gone.Load() {
		var ok bool
		if e, ok = c.found.Get(key); ok {
			h.e.Store(e)
		}
	}
	if e != nil && !e.gone.Load() {
		if now.Before(e.fetched.Add(c.opt.Fresh)) && e.gen == c.gen.Load() { // the hit, inline
			return e.v, true, nil
		}
		if v, hit, found := c.serve(e, key, now, refresh); hit {
			return v, found, nil
		}
	} else if v, hit, found := c.cachedMiss(key, now); hit {
		return v, found, nil
	}
	return c.Load(ctx, key, refresh)
}

// serve answers from e: hit while it is fresh or stale, starting a
// background read while it is stale; no hit once Revalidate was called
// after e was read.
func (c *Cache[K, V]) serve(e *entry[V], key K, now time.Time, refresh Refresh[K, V]) (v V, hit, found bool) {
	if e.gen != c.gen.Load() {
		return v, false, false
	}
	if now.Before(e.fetched.Add(c.opt.Fresh)) {
		return e.v, true, true
	}
	if now.Before(e.fetched.Add(c.opt.Stale)) {
		if claimTry(&e.nextTry, now, c.opt.Backoff) {
			c.start(key, refresh)
		}
		return e.v, true, true
	}
	return v, false, false
}

// cachedMiss is Cached of a key without a value: hit inside the negative
// window.
func (c *Cache[K, V]) cachedMiss(key K, now time.Time) (v V, hit, found bool) {
	if c.missing != nil {
		if at, ok := c.missing.Get(key); ok && now.Before(at.Add(c.opt.Negative)) {
			return v, true, false
		}
	}
	return v, false, false
}

// Load reads key with refresh, sharing the read with the callers of key
// already waiting, and waits for it at most Wait, or until ctx ends.
func (c *Cache[K, V]) Load(ctx context.Context, key K, refresh Refresh[K, V]) (v V, found bool, err error) {
	f, e, hit := c.join(key, refresh)
	if hit {
		if e == nil {
			return v, false, nil
		}
		return e.v, true, nil
	}
	if err := Wait(ctx, f.done, c.opt.Wait); err != nil {
		return v, false, err
	}
	if f.err != nil || f.e == nil {
		return v, false, f.err
	}
	return f.e.v, true, nil
}

// join returns key's read under way, or starts one with refresh, unless a
// read that ended after the caller missed has cached a fresh answer: hit
// then, with its entry (nil: not found). Without this second look, under
// the lock that a read holds to cache its answer and end, a caller that
// missed just before a read ended would start a second read of the key.
func (c *Cache[K, V]) join(key K, refresh Refresh[K, V]) (f *flight[V], e *entry[V], hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[key]; f != nil {
		return f, nil, false
	}
	now := c.opt.Now()
	if e, ok := c.found.Peek(key); ok && now.Before(e.fetched.Add(c.opt.Fresh)) && e.gen == c.gen.Load() {
		return nil, e, true
	}
	if _, hit, _ := c.cachedMiss(key, now); hit {
		return nil, nil, true
	}
	return c.startLocked(key, refresh), nil, false
}

// start returns key's read under way, or starts one with refresh.
func (c *Cache[K, V]) start(key K, refresh Refresh[K, V]) *flight[V] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[key]; f != nil {
		return f
	}
	return c.startLocked(key, refresh)
}

// startLocked starts a read of key with refresh; c.mu is held.
func (c *Cache[K, V]) startLocked(key K, refresh Refresh[K, V]) *flight[V] {
	f := &flight[V]{done: make(chan struct{})}
	c.flights[key] = f
	c.bg.Add(1)
	go c.read(key, f, refresh)
	return f
}

// read runs f, and caches its answer unless key was forgotten meanwhile.
// A failed read leaves the value cached in service while it is usable:
// f's callers get that value.
func (c *Cache[K, V]) read(key K, f *flight[V], refresh Refresh[K, V]) {
	defer c.bg.Done()
	defer close(f.done)
	var prev *V
	if old, ok := c.found.Peek(key); ok {
		prev = &old.v
	}
	v, found, err := refresh(context.Background(), key, prev)
	now := c.opt.Now()
	var e *entry[V]
	if err == nil && found {
		e = &entry[V]{v: v, fetched: now}
	}
	c.mu.Lock()
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	if err == nil && !f.forgotten {
		if found {
			// Not forgotten: it started after the last Revalidate.
			e.gen = c.gen.Load()
			c.removeMiss(key)
			old, replaced := c.found.Peek(key)
			c.found.Add(key, e)
			if replaced {
				old.gone.Store(true) // Add replaces without telling onEvict
			}
		} else {
			c.found.Remove(key)
			if c.missing != nil {
				c.missing.Add(key, now)
			}
		}
	}
	c.mu.Unlock()
	if err == nil {
		f.e = e
		return
	}
	if old, ok := c.found.Peek(key); ok && now.Before(old.fetched.Add(c.opt.Stale)) {
		if c.ServeStale != nil {
			c.ServeStale(key, old.v, now.Sub(old.fetched), err)
		}
		f.e = old
		return
	}
	f.err = err
}

func (c *Cache[K, V]) removeMiss(key K) {
	if c.missing != nil {
		c.missing.Remove(key)
	}
}

// Forget drops key's value, so that the next Get reads it. A read of key
// already under way does not cache what it read, which may predate the
// change that called Forget; its callers still get it.
func (c *Cache[K, V]) Forget(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[key]; f != nil {
		f.forgotten = true
		delete(c.flights, key)
	}
	c.found.Remove(key)
	c.removeMiss(key)
}

// Revalidate makes every value read again before it is next served, for
// a caller that may have missed changes to any of them; keys not found are
// forgotten. Unlike a purge, it keeps the values: each one's read gets it
// as prev (the caller knew the key), and a read that fails serves it on
// within its stale window, as any failed refresh. Reads under way do not
// cache what they read, which may predate the missed changes; their
// callers still get it.
func (c *Cache[K, V]) Revalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, f := range c.flights {
		f.forgotten = true
		delete(c.flights, key)
	}
	c.gen.Add(1)
	if c.missing != nil {
		c.missing.Purge()
	}
}

// Len returns the number of values cached.
func (c *Cache[K, V]) Len() int { return c.found.Len() }

// Peek returns key's value, if cached, whatever its age, without counting
// a use.
func (c *Cache[K, V]) Peek(key K) (v V, ok bool) {
	if e, ok := c.found.Peek(key); ok {
		return e.v, true
	}
	return v, false
}

// WaitReads waits for the reads under way, for tests.
func (c *Cache[K, V]) WaitReads() { c.bg.Wait() }

// Wait waits for done to be closed, at most d, or until ctx ends: nil, an
// error wrapping context.DeadlineExceeded, or ctx's error.
func Wait(ctx context.Context, done <-chan struct{}, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
		return fmt.Errorf("no answer within %v: %w", d, context.DeadlineExceeded)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// claimTry reports whether the caller may start a background read at now:
// whether none was started less than backoff ago (next holds when, in Unix
// nanoseconds). Of concurrent callers, one wins.
func claimTry(next *atomic.Int64, now time.Time, backoff time.Duration) bool {
	n := next.Load()
	return now.UnixNano() >= n && next.CompareAndSwap(n, now.Add(backoff).UnixNano())
}
