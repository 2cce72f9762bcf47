package apikey

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// newTestCache returns a fixture server (a memory store behind a
// FaultyStore, the fake clock, a log buffer) configured by change, its key
// cache, and a key it holds. The cache reads keys as the Gate does
// (Gate.readKey, through the store timeout).
func newTestCache(t *testing.T, change ...func(*Config)) (*server, *keyCache, string) {
	t.Helper()
	s := newServer(t, nil, change...)
	key, _ := s.mint(t, "acme")
	return s, s.keys, key
}

func TestCacheHitDoesNotTouchStore(t *testing.T) {
	s, c, key := newTestCache(t)
	ctx := context.Background()
	for i := range 100 {
		k, err := c.Lookup(ctx, keyformat.DigestOf(key))
		if err != nil || k.Owner != "acme" {
			t.Fatalf("lookup %d = %v, %v", i, k, err)
		}
		s.clock.Advance(500 * time.Millisecond) // 50 s in all: inside the 60 s window
	}
	if n := s.store.Gets.Load(); n != 1 {
		t.Errorf("100 lookups in the fresh window made %d store calls, want 1", n)
	}
}

func TestCacheWindows(t *testing.T) {
	cases := []struct {
		name      string
		found     bool
		advance   time.Duration
		wantCalls int64
	}{
		{"found, fresh window not over", true, 59 * time.Second, 1},
		{"found, fresh window over", true, 60 * time.Second, 2},
		{"not found, negative window not over", false, 29 * time.Second, 1},
		{"not found, negative window over", false, 30 * time.Second, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c, key := newTestCache(t)
			if !tc.found {
				key, _ = keyformat.New("kg") // well-formed, never stored
			}
			ctx := context.Background()
			for range 2 {
				_, err := c.Lookup(ctx, keyformat.DigestOf(key))
				if tc.found && err != nil || !tc.found && !errors.Is(err, store.ErrKeyNotFound) {
					t.Fatalf("Lookup = %v", err)
				}
				s.clock.Advance(tc.advance)
			}
			s.waitRefreshes()
			if n := s.store.Gets.Load(); n != tc.wantCalls {
				t.Errorf("store calls = %d, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestCacheConcurrentColdLookupsShareOneCall(t *testing.T) {
	s, c, key := newTestCache(t)
	s.store.Release = make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	started := make(chan struct{}, 100)
	for range 100 {
		wg.Go(func() {
			started <- struct{}{}
			_, err := c.Lookup(context.Background(), keyformat.DigestOf(key))
			errs <- err
		})
	}
	for range 100 {
		<-started
	}
	time.Sleep(50 * time.Millisecond) // let the lookups reach the store call
	close(s.store.Release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.store.Gets.Load(); n != 1 {
		t.Errorf("100 concurrent cold lookups made %d store calls, want 1", n)
	}
}

func TestCacheStaleIfError(t *testing.T) {
	s, c, key := newTestCache(t)
	ctx := context.Background()
	if _, err := c.Lookup(ctx, keyformat.DigestOf(key)); err != nil {
		t.Fatal(err)
	}
	s.store.Down.Store(true)
	s.clock.Advance(61 * time.Second) // fresh window over, stale window not
	k, err := c.Lookup(ctx, keyformat.DigestOf(key))
	if err != nil || k.Owner != "acme" {
		t.Fatalf("stale lookup = %v, %v; want the cached key", k, err)
	}
	s.waitRefreshes()
	if logs := s.logs.String(); !strings.Contains(logs, `"severity":"WARNING"`) || !strings.Contains(logs, "stale") {
		t.Errorf("no WARNING about the stale key in %s", logs)
	}
	calls := s.store.Gets.Load()
	if _, err := c.Lookup(ctx, keyformat.DigestOf(key)); err != nil {
		t.Fatal(err)
	}
	s.waitRefreshes()
	if n := s.store.Gets.Load(); n != calls {
		t.Errorf("a lookup inside the retry backoff called the store (%d calls, want %d)", n, calls)
	}
	s.clock.Advance(10 * time.Minute) // stale window over
	if _, err := c.Lookup(ctx, keyformat.DigestOf(key)); !errors.Is(err, errStoreUnavailable) {
		t.Errorf("lookup after the stale window = %v, want errStoreUnavailable", err)
	}
	s.store.Down.Store(false)
	if _, err := c.Lookup(ctx, keyformat.DigestOf(key)); err != nil {
		t.Errorf("lookup after the store came back = %v", err)
	}
}

func TestCacheUncachedKeyWithStoreDown(t *testing.T) {
	s, c, key := newTestCache(t)
	s.store.Down.Store(true)
	if _, err := c.Lookup(context.Background(), keyformat.DigestOf(key)); !errors.Is(err, errStoreUnavailable) || errors.Is(err, store.ErrKeyNotFound) {
		t.Errorf("Lookup = %v, want errStoreUnavailable", err)
	}
}

func TestCacheHangingStoreTimesOut(t *testing.T) {
	s, c, key := newTestCache(t, func(c *Config) { c.StoreTimeout = 100 * time.Millisecond })
	s.store.Hang.Store(true)
	start := time.Now()
	_, err := c.Lookup(context.Background(), keyformat.DigestOf(key))
	if !errors.Is(err, errStoreUnavailable) {
		t.Errorf("Lookup = %v, want errStoreUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Lookup took %v with a 100ms store timeout", d)
	}
}

func TestCacheForget(t *testing.T) {
	s, c, key := newTestCache(t)
	ctx := context.Background()
	c.Lookup(ctx, keyformat.DigestOf(key))
	c.Forget(keyformat.ID(key))
	c.Lookup(ctx, keyformat.DigestOf(key))
	if n := s.store.Gets.Load(); n != 2 {
		t.Errorf("store calls = %d, want 2 (Forget drops the entry)", n)
	}
	c.Forget("not an id") // no panic
}

func TestCacheSizeBound(t *testing.T) {
	s, c, _ := newTestCache(t, func(c *Config) { c.CacheSize = 10 })
	for range 50 {
		k, _ := s.mint(t, "acme")
		if _, err := c.Lookup(context.Background(), keyformat.DigestOf(k)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 10 {
		t.Errorf("Len = %d, want 10", c.Len())
	}
}

// TestCacheStaleWhileRevalidate checks that a found key past its fresh
// window and inside its stale window is served at once while the store
// hangs or fails, that the store is asked about it at most once a second,
// that each failed refresh is logged at WARNING, and that a key with no
// usable entry waits for the store and gets errStoreUnavailable.
func TestCacheStaleWhileRevalidate(t *testing.T) {
	cases := []struct {
		name   string
		outage func(*server)
	}{
		{"store hangs", func(s *server) { s.store.Hang.Store(true) }},
		{"store fails", func(s *server) { s.store.Down.Store(true) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c, key := newTestCache(t, func(c *Config) { c.StoreTimeout = 50 * time.Millisecond })
			k, err := c.Lookup(context.Background(), keyformat.DigestOf(key))
			if err != nil {
				t.Fatal(err)
			}
			id, hint := k.ID, k.Hint
			uncached, _ := s.mint(t, "acme")
			ctx := context.Background()
			tc.outage(s)
			s.clock.Advance(61 * time.Second) // fresh window over, stale window not
			before := s.store.Gets.Load()
			const seconds = 5
			for i := range seconds * 10 {
				if got, err := c.Lookup(ctx, keyformat.DigestOf(key)); err != nil || got.ID != id {
					t.Fatalf("lookup %d in the outage = %v, %v; want the stale key at once", i, got, err)
				}
				s.clock.Advance(100 * time.Millisecond)
			}
			s.waitRefreshes()
			calls := s.store.Gets.Load() - before
			if calls < 1 || calls > seconds {
				t.Errorf("%d lookups over %d s made %d store calls, want 1 to %d (one a second)", seconds*10, seconds, calls, seconds)
			}
			logs := s.logs.String()
			warnings := strings.Count(logs, `"message":"key store unavailable: serving a stale cached key"`)
			if int64(warnings) != calls {
				t.Errorf("%d WARNING entries for %d failed refreshes:\n%s", warnings, calls, logs)
			}
			for _, want := range []string{`"severity":"WARNING"`, `"key_id":"` + id + `"`, `"key_hint":"` + hint + `"`, `"age":`, `"error":`} {
				if !strings.Contains(logs, want) {
					t.Errorf("the WARNING lacks %s:\n%s", want, logs)
				}
			}
			if _, err := c.Lookup(ctx, keyformat.DigestOf(uncached)); !errors.Is(err, errStoreUnavailable) {
				t.Errorf("uncached key in the outage = %v, want errStoreUnavailable", err)
			}
		})
	}
}

// TestCacheStaleOffWaits checks that with KEY_STALE_TTL=0 a key past its
// fresh window waits for the store, and gets errStoreUnavailable when it
// fails.
func TestCacheStaleOffWaits(t *testing.T) {
	s, c, key := newTestCache(t, func(c *Config) { c.StaleTTL = 0 })
	if _, err := c.Lookup(t.Context(), keyformat.DigestOf(key)); err != nil {
		t.Fatal(err)
	}
	s.store.Down.Store(true)
	s.clock.Advance(time.Minute)
	if _, err := c.Lookup(t.Context(), keyformat.DigestOf(key)); !errors.Is(err, errStoreUnavailable) {
		t.Errorf("Lookup = %v, want errStoreUnavailable", err)
	}
}

// TestCacheNegativeEntryExpires checks that a key not found is read again,
// before the answer, once its negative window is over: a key created since
// is accepted then, never refused from a stale not-found.
func TestCacheNegativeEntryExpires(t *testing.T) {
	s, c, _ := newTestCache(t)
	key, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(t.Context(), keyformat.DigestOf(key)); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("Lookup before the key exists = %v", err)
	}
	if err := s.store.Create(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(29 * time.Second)
	if _, err := c.Lookup(t.Context(), keyformat.DigestOf(key)); !errors.Is(err, store.ErrKeyNotFound) {
		t.Errorf("Lookup inside KEY_NEGATIVE_TTL = %v, want ErrKeyNotFound", err)
	}
	s.clock.Advance(time.Second)
	if _, err := c.Lookup(t.Context(), keyformat.DigestOf(key)); err != nil {
		t.Errorf("Lookup after KEY_NEGATIVE_TTL = %v, want the key", err)
	}
}

// TestCacheForgetOnlyItsOwnKey checks that Forget during a refresh keeps
// that refresh from caching only when it is of the forgotten key: a read
// that predates a revocation must not put the old answer back.
func TestCacheForgetOnlyItsOwnKey(t *testing.T) {
	cases := []struct {
		name      string
		same      bool
		wantCalls int64 // after a second lookup of the refreshed key
	}{
		{"forget another key", false, 1},
		{"forget the key being read", true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c, key := newTestCache(t)
			other, _ := s.mint(t, "acme")
			forgotten := other
			if tc.same {
				forgotten = key
			}
			s.store.Release = make(chan struct{})
			done := make(chan struct{})
			go func() {
				c.Lookup(context.Background(), keyformat.DigestOf(key)) // reads, then waits for release
				close(done)
			}()
			for s.store.Gets.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			c.Forget(keyformat.ID(forgotten))
			close(s.store.Release)
			<-done
			s.store.Release = nil
			c.Lookup(context.Background(), keyformat.DigestOf(key))
			if n := s.store.Gets.Load(); n != tc.wantCalls {
				t.Errorf("store calls = %d, want %d", n, tc.wantCalls)
			}
		})
	}
}

// TestCacheUnknownFloodKeepsFoundKeys checks that a flood of unknown keys,
// ten times the cache size, evicts no found key: it stays a cache hit, and
// is served stale in an outage.
func TestCacheUnknownFloodKeepsFoundKeys(t *testing.T) {
	const size = 10
	s, c, key := newTestCache(t, func(c *Config) { c.CacheSize = size })
	ctx := context.Background()
	if _, err := c.Lookup(ctx, keyformat.DigestOf(key)); err != nil {
		t.Fatal(err)
	}
	for range 10 * size {
		forged, _ := keyformat.New("kg")
		if _, err := c.Lookup(ctx, keyformat.DigestOf(forged)); !errors.Is(err, store.ErrKeyNotFound) {
			t.Fatalf("forged key = %v", err)
		}
	}
	before := s.store.Gets.Load()
	if _, err := c.Lookup(ctx, keyformat.DigestOf(key)); err != nil {
		t.Fatal(err)
	}
	if n := s.store.Gets.Load() - before; n != 0 {
		t.Errorf("the valid key after the flood made %d store calls, want 0 (a cache hit)", n)
	}
	s.store.Down.Store(true)
	s.clock.Advance(2 * time.Minute)
	if _, err := c.Lookup(ctx, keyformat.DigestOf(key)); err != nil {
		t.Errorf("the valid key in an outage after the flood = %v, want it served stale", err)
	}
	s.waitRefreshes()
}

// TestCacheHitsDoNotAllocate checks that a fresh hit, and a stale hit that
// starts no refresh, cost no allocation.
func TestCacheHitsDoNotAllocate(t *testing.T) {
	s, c, key := newTestCache(t)
	d := keyformat.DigestOf(key)
	if _, err := c.cached(d, s.clock.Now()); err != errNotCached {
		t.Fatal(err)
	}
	c.Lookup(t.Context(), d)
	if n := testing.AllocsPerRun(100, func() { c.cached(d, s.clock.Now()) }); n != 0 {
		t.Errorf("fresh hit: %v allocations, want 0", n)
	}
	s.store.Hang.Store(true)
	s.clock.Advance(61 * time.Second)
	c.cached(d, s.clock.Now()) // starts the one refresh of this second
	if n := testing.AllocsPerRun(100, func() { c.cached(d, s.clock.Now()) }); n != 0 {
		t.Errorf("stale hit: %v allocations, want 0", n)
	}
	s.store.Hang.Store(false)
	s.waitRefreshes()
}
