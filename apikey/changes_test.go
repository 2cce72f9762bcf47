package apikey

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// The change feed on the fake clock (changes.go): two instances of one
// function on one memory store, a, whose API and store make the changes,
// and b, which must learn of them within syncMaxAge of its own clock,
// without KEY_CACHE_TTL passing.

// twoInstances returns two servers on one memory store, each with a
// FaultyStore (and so counts) of its own.
func twoInstances(t *testing.T, change ...func(*Config)) (a, b *server, ms *memstore.Store) {
	t.Helper()
	ms = memstore.New()
	a, b = newServer(t, ms, change...), newServer(t, ms, change...)
	return a, b, ms
}

// manager mints a key that may use the keys API and the routes.
func (s *server) manager(t testing.TB, owner string) (string, store.Key) {
	t.Helper()
	return s.mint(t, owner, func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings} })
}

// want serves GET / with key and checks the status.
func (s *server) want(t testing.TB, key string, status int, when string) *http.Response {
	t.Helper()
	w := s.do("GET", "/", "", key)
	if w.Code != status {
		t.Fatalf("%s: GET / = %d %s, want %d", when, w.Code, w.Body, status)
	}
	return w.Result()
}

// keyChanges are the ways a key stops working through keygate: its API on
// instance a, and the store calls the CLI makes (apikey revoke, delete).
var keyChanges = []struct {
	name   string
	change func(t *testing.T, a *server, ms *memstore.Store, key string, k store.Key)
}{
	{"revoked through the API", func(t *testing.T, a *server, _ *memstore.Store, key string, k store.Key) {
		if w := a.call("DELETE", "/v1/keys/"+k.ID, key, ""); w.Code != http.StatusNoContent {
			t.Fatalf("revoke = %d %s", w.Code, w.Body)
		}
	}},
	{"rotated through the API with no grace", func(t *testing.T, a *server, _ *memstore.Store, key string, k store.Key) {
		if w := a.call("POST", "/v1/keys/"+k.ID+"/rotate", key, `{"grace":"0s"}`); w.Code != http.StatusCreated {
			t.Fatalf("rotate = %d %s", w.Code, w.Body)
		}
	}},
	{"revoked in the store, as the CLI does", func(t *testing.T, _ *server, ms *memstore.Store, _ string, k store.Key) {
		if _, err := ms.Revoke(context.Background(), k.ID, t0); err != nil {
			t.Fatal(err)
		}
	}},
	{"deleted in the store, as the CLI does", func(t *testing.T, _ *server, ms *memstore.Store, _ string, k store.Key) {
		if err := ms.Delete(context.Background(), k.ID); err != nil {
			t.Fatal(err)
		}
	}},
}

// TestChangesReachIdleInstance: an instance idle for 10 s (its clock; far
// inside KEY_CACHE_TTL) waits for a sync on its next request, which is
// refused at once.
func TestChangesReachIdleInstance(t *testing.T) {
	for _, c := range keyChanges {
		t.Run(c.name, func(t *testing.T) {
			a, b, ms := twoInstances(t)
			key, k := a.manager(t, "acme")
			b.want(t, key, 200, "before the change")
			c.change(t, a, ms, key, k)
			b.want(t, key, 200, "at once on b, which synced less than a second ago")
			waits, reads := b.feed.waits.Load(), b.store.ChangeReads.Load()
			b.clock.Advance(10 * time.Second)
			b.want(t, key, 401, "after b was idle 10 s")
			if n := b.feed.waits.Load() - waits; n != 1 {
				t.Errorf("the request after 10 s idle waited %d times for a sync, want 1", n)
			}
			if n := b.store.ChangeReads.Load() - reads; n != 1 {
				t.Errorf("the sync made %d reads of the feed, want 1", n)
			}
		})
	}
}

// TestChangesReachBusyInstance: an instance serving a request every 50 ms
// refuses a changed key within syncMaxAge of the change (in fact within
// syncEvery and a request) and no request waits for a sync; it reads the
// feed about once a second.
func TestChangesReachBusyInstance(t *testing.T) {
	for _, c := range keyChanges {
		t.Run(c.name, func(t *testing.T) {
			a, b, ms := twoInstances(t)
			key, k := a.manager(t, "acme")
			other, _ := a.mint(t, "acme")
			b.want(t, key, 200, "before the change")
			b.want(t, other, 200, "before the change")
			waits, reads := b.feed.waits.Load(), b.store.ChangeReads.Load()
			const step = 50 * time.Millisecond
			var changedAt, refusedAt time.Time
			start := b.clock.Now()
			for i := 0; b.clock.Now().Sub(start) < 10*time.Second; i++ {
				if i == 60 {
					c.change(t, a, ms, key, k)
					changedAt = b.clock.Now()
				}
				w := b.do("GET", "/", "", key)
				switch {
				case w.Code == 401 && refusedAt.IsZero() && !changedAt.IsZero():
					refusedAt = b.clock.Now()
				case w.Code != 200 && refusedAt.IsZero():
					t.Fatalf("request %d = %d %s", i, w.Code, w.Body)
				}
				b.want(t, other, 200, "a key that did not change")
				b.waitRefreshes() // a sync takes a few ms: done before the next step
				b.clock.Advance(step)
			}
			if refusedAt.IsZero() || refusedAt.Sub(changedAt) > syncMaxAge {
				t.Errorf("changed at %v, first refused at %v: want within %v", changedAt, refusedAt, syncMaxAge)
			}
			if n := b.feed.waits.Load() - waits; n != 0 {
				t.Errorf("%d requests of a busy instance waited for a sync, want 0", n)
			}
			if n := b.store.ChangeReads.Load() - reads; n < 5 || n > 11 {
				t.Errorf("10 s of busy traffic read the feed %d times, want about once a second (5 to 11)", n)
			}
		})
	}
}

// TestChangesPlanReachesInstance: a plan set and cleared in the store (as
// "apikey plan set" and "plan clear" do) applies to b's next request after
// syncMaxAge, inside KEY_CACHE_TTL.
func TestChangesPlanReachesInstance(t *testing.T) {
	_, b, ms := twoInstances(t)
	key, _ := b.mint(t, "acme")
	if r := b.want(t, key, 200, "without a plan"); r.Header.Get("RateLimit-Limit") != "" {
		t.Fatalf("RateLimit-Limit %q without a plan or default", r.Header.Get("RateLimit-Limit"))
	}
	setPlan(t, ms, store.Plan{Owner: "acme", RateLimit: 1, Burst: 1})
	b.clock.Advance(syncMaxAge)
	if r := b.want(t, key, 200, "with the plan"); r.Header.Get("RateLimit-Limit") != "1" {
		t.Errorf("RateLimit-Limit = %q, want the new plan's 1", r.Header.Get("RateLimit-Limit"))
	}
	w := b.do("GET", "/", "", key)
	if w.Code != 429 || testkit.Problem(t, w).Limit != "owner" {
		t.Errorf("second request = %d %s, want 429 of the owner's new limit", w.Code, w.Body)
	}
	if err := ms.DeletePlan(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(syncMaxAge)
	for range 3 {
		if r := b.want(t, key, 200, "after the plan is cleared"); r.Header.Get("RateLimit-Limit") != "" {
			t.Errorf("RateLimit-Limit %q after the plan is cleared", r.Header.Get("RateLimit-Limit"))
		}
	}
}

// TestChangesReachKeysOfADroppedOwner: a key whose owner's plan the owners'
// LRU dropped (more owners than KEY_CACHE_SIZE) still gets the owner's
// changed plan: the key's entry finds its plan gone (swr.Handle), and the
// request reads it.
func TestChangesReachKeysOfADroppedOwner(t *testing.T) {
	_, b, ms := twoInstances(t, func(c *Config) { c.CacheSize = 2 })
	acme, _ := b.mint(t, "acme")
	bob, _ := b.mint(t, "bob")
	carol, _ := b.mint(t, "carol")
	b.want(t, acme, 200, "acme")
	b.want(t, bob, 200, "bob")
	b.want(t, acme, 200, "acme again") // bob's key is now the least recent
	b.want(t, carol, 200, "carol")     // drops bob's key, and acme's plan
	if _, ok := b.owners.plans.Peek("acme"); ok {
		t.Fatal("acme's plan is still in the LRU: the test does not test what it says")
	}
	setPlan(t, ms, store.Plan{Owner: "acme", RateLimit: 1, Burst: 1})
	b.clock.Advance(syncMaxAge)
	if r := b.want(t, acme, 200, "with the plan"); r.Header.Get("RateLimit-Limit") != "1" {
		t.Errorf("RateLimit-Limit = %q, want the new plan's 1", r.Header.Get("RateLimit-Limit"))
	}
}

// blockedPlans is a store whose GetPlan, once armed, waits for release.
type blockedPlans struct {
	store.Store
	armed   atomic.Bool
	reading chan struct{} // receives when a blocked GetPlan starts
	release chan struct{}
}

func (s *blockedPlans) GetPlan(ctx context.Context, owner string) (store.Plan, error) {
	if s.armed.Load() {
		s.reading <- struct{}{}
		<-s.release
	}
	return s.Store.GetPlan(ctx, owner)
}

// TestChangesForgetDuringPlanRead: a read of a plan under way when a change
// of it is applied does not keep what it read (which may predate the
// change): the next request reads the plan again.
func TestChangesForgetDuringPlanRead(t *testing.T) {
	bp := &blockedPlans{Store: memstore.New(), reading: make(chan struct{}), release: make(chan struct{})}
	s := newServer(t, bp)
	key, _ := s.mint(t, "acme")
	s.want(t, key, 200, "warm-up")
	bp.armed.Store(true)
	s.clock.Advance(s.cfg.CacheTTL) // the plan is stale: a request reads it in the background
	s.want(t, key, 200, "served on the stale plan")
	<-bp.reading
	bp.armed.Store(false)
	setPlan(t, bp.Store, store.Plan{Owner: "acme", RateLimit: 1, Burst: 1})
	s.owners.forget("acme") // as the change feed does
	close(bp.release)
	s.waitRefreshes()
	if _, ok := s.owners.plans.Peek("acme"); ok {
		t.Fatal("the read under way when the plan was forgotten kept what it read")
	}
	if r := s.want(t, key, 200, "after the change"); r.Header.Get("RateLimit-Limit") != "1" {
		t.Errorf("RateLimit-Limit = %q, want the new plan's 1", r.Header.Get("RateLimit-Limit"))
	}
}

// TestChangesFeedHangs: while the store hangs on the change feed, a busy
// instance keeps answering from its cache without waiting; an instance idle
// for 10 s waits for one sync, at most STORE_TIMEOUT, then answers on the
// last known state (a key revoked meanwhile still works), and the failures
// are logged at WARNING at most once per 10 s. Once the feed answers again,
// the revocation applies within a second of requests.
func TestChangesFeedHangs(t *testing.T) {
	const timeout = 100 * time.Millisecond
	a, b, _ := twoInstances(t, func(c *Config) { c.StoreTimeout = timeout })
	key, k := a.manager(t, "acme")
	b.want(t, key, 200, "warm-up")
	b.store.ChangesHang.Store(true)
	waits := b.feed.waits.Load()

	// Busy: a request every 50 ms of b's clock, for 5 s.
	start := time.Now()
	for range 100 {
		b.want(t, key, 200, "busy, the feed hanging")
		b.clock.Advance(50 * time.Millisecond)
	}
	busy := time.Since(start)
	if n := b.feed.waits.Load() - waits; n != 0 {
		t.Errorf("%d busy requests waited for a sync, want 0", n)
	}
	if busy > 50*timeout {
		t.Errorf("100 busy requests took %v: they waited for the feed", busy)
	}
	b.waitRefreshes()

	// Idle for 10 s, and the key revoked meanwhile.
	if w := a.call("DELETE", "/v1/keys/"+k.ID, key, ""); w.Code != http.StatusNoContent {
		t.Fatalf("revoke = %d %s", w.Code, w.Body)
	}
	b.clock.Advance(10 * time.Second)
	start = time.Now()
	b.want(t, key, 200, "idle 10 s, the feed hanging: the last known state")
	if took := time.Since(start); took < timeout || took > timeout+3*time.Second {
		t.Errorf("the idle request took %v, want the %v store timeout", took, timeout)
	}
	if n := b.feed.waits.Load() - waits; n != 1 {
		t.Errorf("the idle request waited %d times, want 1", n)
	}
	// The sync it waited for ends at its own deadline, at about the same
	// time: requests until then wait for it too, as requests that come
	// with the idle one would.
	b.waitRefreshes()
	// Then busy again for 5 s: retried once a second, no more waiting, and
	// logged once per 10 s.
	for range 5 {
		b.clock.Advance(time.Second)
		b.want(t, key, 200, "busy again, the feed hanging")
		b.waitRefreshes()
	}
	if n := b.feed.waits.Load() - waits; n != 1 {
		t.Errorf("%d requests waited, want only the idle one", n)
	}
	logs := b.logs.String()
	const warning = `"message":"key store unavailable: changes to keys and plans not read; serving the last known state"`
	if n := strings.Count(logs, warning); n != 2 { // the busy phase's, and the idle request's 10 s later
		t.Errorf("%d warnings about the feed in 20 s, want 2 (one per 10 s):\n%s", n, logs)
	}
	if !strings.Contains(logs, `"severity":"WARNING"`) || !strings.Contains(logs, `"age":`) {
		t.Errorf("the warning lacks its severity or age:\n%s", logs)
	}

	b.store.ChangesHang.Store(false)
	b.clock.Advance(time.Second)
	b.do("GET", "/", "", key) // starts a sync in the background
	b.waitRefreshes()
	b.want(t, key, 401, "once the feed answers")
}

// TestChangesFirstSyncAfterEarlyRequests: requests that went on before the
// first sync could take its cursor (the feed hanging) may have cached keys
// from before it; that sync drops them, so a change made meanwhile is not
// lost.
func TestChangesFirstSyncAfterEarlyRequests(t *testing.T) {
	ms := memstore.New()
	fs := &testkit.FaultyStore{Store: ms}
	fs.ChangesHang.Store(true)
	s := newServer(t, fs, func(c *Config) { c.StoreTimeout = 50 * time.Millisecond })
	key, k := s.mint(t, "acme")
	s.want(t, key, 200, "before the first sync")
	if _, err := ms.Revoke(context.Background(), k.ID, t0); err != nil {
		t.Fatal(err)
	}
	fs.ChangesHang.Store(false)
	s.waitRefreshes()
	s.clock.Advance(syncEvery)
	s.do("GET", "/", "", key) // starts the first sync that succeeds
	s.waitRefreshes()
	s.want(t, key, 401, "after the first sync")
}

// feedOf is a store whose change feed says what feed says, for cursors
// other than the present.
type feedOf struct {
	store.Store
	feed func() ([]store.Change, error)
}

func (s *feedOf) Changes(ctx context.Context, after store.ChangeCursor, limit int) ([]store.Change, store.ChangeCursor, error) {
	changes, next, err := s.Store.Changes(ctx, after, limit)
	if after == "" || err != nil || s.feed == nil {
		return changes, next, err
	}
	changes, err = s.feed()
	return changes, next, err
}

// TestChangesStartOver: when a Gate cannot know what changed (the feed no
// longer has its cursor, it is further behind than a sync reads, a change
// of a kind it does not know, or it has not synced for longer than its
// cache is used), it takes the present and revalidates everything cached:
// a key changed meanwhile is refused, and a key that did not change is
// read again.
func TestChangesStartOver(t *testing.T) {
	cases := []struct {
		name string
		// arrange makes the Gate start over on its next sync, after
		// advance; it may use the store's feed.
		arrange func(t *testing.T, s *feedOf)
		advance time.Duration
		reads   int64 // of the feed, by the sync
	}{
		{"the cursor expired", func(t *testing.T, s *feedOf) {
			s.feed = func() ([]store.Change, error) { return nil, store.ErrChangesExpired }
		}, syncMaxAge, 2},
		{"too far behind", func(t *testing.T, s *feedOf) {
			for i := range maxChangePages * changesPage {
				setPlan(t, s.Store, store.Plan{Owner: fmt.Sprintf("owner-%d", i), MaxKeys: 1})
			}
		}, syncMaxAge, maxChangePages + 1},
		{"a kind it does not know", func(t *testing.T, s *feedOf) {
			s.feed = func() ([]store.Change, error) { return []store.Change{{Kind: "future", ID: "x", At: t0}}, nil }
		}, syncMaxAge, 1},
		{"idle past the cache's life", func(t *testing.T, s *feedOf) {
			s.feed = func() ([]store.Change, error) {
				t.Error("the backlog was read")
				return nil, nil
			}
		}, 11 * time.Minute, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fo := &feedOf{Store: memstore.New()}
			s := newServer(t, fo)
			changed, k := s.mint(t, "acme")
			same, _ := s.mint(t, "acme")
			s.want(t, changed, 200, "warm-up")
			s.want(t, same, 200, "warm-up")
			// Revoked outside keygate, so that only starting over finds it.
			if _, err := editedOutside(fo.Store).Revoke(context.Background(), k.ID, t0); err != nil {
				t.Fatal(err)
			}
			c.arrange(t, fo)
			gets, reads := s.store.Gets.Load(), s.store.ChangeReads.Load()
			s.clock.Advance(c.advance)
			s.want(t, changed, 401, "after starting over")
			s.want(t, same, 200, "after starting over")
			if n := s.store.Gets.Load() - gets; n != 2 {
				t.Errorf("starting over read %d keys again, want both", n)
			}
			if n := s.store.ChangeReads.Load() - reads; n != c.reads {
				t.Errorf("the sync read the feed %d times, want %d", n, c.reads)
			}
			// Only changes lost (the feed broken, or pruned) are worth a
			// warning; the other ways are how the feed works.
			const warning = `"severity":"WARNING","message":"change feed broken`
			if warned := strings.Contains(s.logs.String(), warning); warned != (c.name == "the cursor expired") {
				t.Errorf("warned that the feed broke: %v; logs:\n%s", warned, s.logs)
			}
		})
	}
}

// TestChangesConcurrentWakeUp: 64 requests arrive at once at an instance
// idle for 10 s, after its key was revoked elsewhere: every one is refused,
// and they share one read of the feed.
func TestChangesConcurrentWakeUp(t *testing.T) {
	a, b, _ := twoInstances(t)
	key, k := a.manager(t, "acme")
	b.want(t, key, 200, "before the revocation")
	if w := a.call("DELETE", "/v1/keys/"+k.ID, key, ""); w.Code != http.StatusNoContent {
		t.Fatalf("revoke = %d %s", w.Code, w.Body)
	}
	reads := b.store.ChangeReads.Load()
	b.clock.Advance(10 * time.Second)
	const n = 64
	codes := make(chan int, n)
	start := make(chan struct{})
	var ready sync.WaitGroup
	for range n {
		ready.Add(1)
		go func() {
			ready.Done()
			<-start
			codes <- b.do("GET", "/", "", key).Code
		}()
	}
	ready.Wait()
	close(start)
	for range n {
		if code := <-codes; code != 401 {
			t.Errorf("a request after the wake-up = %d, want 401", code)
		}
	}
	b.waitRefreshes()
	if got := b.store.ChangeReads.Load() - reads; got != 1 {
		t.Errorf("%d concurrent requests made %d reads of the feed, want 1", n, got)
	}
}

// revokeMany mints perOwner keys for each of owners owners in s, and then
// revokes them all, one goroutine per owner: owners × perOwner changes in
// the feed. It returns how long the revocations took.
func revokeMany(t *testing.T, s store.KeyStore, owners, perOwner int) time.Duration {
	t.Helper()
	ids := make([][]string, owners)
	var wg sync.WaitGroup
	for o := range owners {
		wg.Go(func() {
			for range perOwner {
				_, k := testkit.MintKey(t, s, fmt.Sprintf("writer-%d", o))
				ids[o] = append(ids[o], k.ID)
			}
		})
	}
	wg.Wait()
	start := time.Now()
	for o := range owners {
		wg.Go(func() {
			for _, id := range ids[o] {
				if _, err := s.Revoke(context.Background(), id, t0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// getAll serves GET / with each key on s at once, from one client address
// (httptest's), and returns how many got each status; answered, if not
// nil, counts the answers as they come.
func (s *server) getAll(keys []string, answered *atomic.Int64) map[int]int {
	codes := make(chan int, len(keys))
	for _, key := range keys {
		go func() {
			code := s.do("GET", "/", "", key).Code
			if answered != nil {
				answered.Add(1)
			}
			codes <- code
		}()
	}
	got := make(map[int]int)
	for range keys {
		got[<-codes]++
	}
	return got
}

// startOverLogged is the start of the entry that a start-over for a
// backlog logs.
const startOverLogged = `"severity":"NOTICE","message":"more changes since the last sync than one sync reads`

// TestChangesStartOverKeepsKnownKeys: other owners' writes put b more than
// a sync's worth of changes behind, so it starts over; 15 keys of another
// owner that b had cached, sent at once from one address, are all served.
// They are read again (a key revoked in the backlog must not be served),
// but as keys b knew: not charged to the unknown-key budget of 10 an
// address, which a purge of the cache made 5 of them exceed. The reads are
// held until all 15 requests have read or been answered, so that charges
// cannot be refunded in between: deterministic, whatever the machine's
// load. With the store down then, they are served from the cache.
func TestChangesStartOverKeepsKnownKeys(t *testing.T) {
	a, b, ms := twoInstances(t, slowStore)
	keys := make([]string, 15)
	for i := range keys {
		keys[i], _ = a.mint(t, "other")
		b.want(t, keys[i], 200, "warm-up")
	}
	revokeMany(t, ms, 20, (maxChangePages*changesPage)/20+1)
	b.clock.Advance(syncMaxAge) // idle: the next request waits for the sync

	b.store.Release = make(chan struct{})
	gets := b.store.Gets.Load()
	var got map[int]int
	var answered atomic.Int64
	done := make(chan struct{})
	go func() { got = b.getAll(keys, &answered); close(done) }()
	testkit.WaitFor(t, "15 key reads or answers", func() bool {
		return b.store.Gets.Load()-gets+answered.Load() >= int64(len(keys))
	})
	close(b.store.Release)
	<-done
	if got[200] != len(keys) {
		t.Errorf("after the start-over, 15 cached keys at once: %v, want 15 × 200", got)
	}
	if n := b.store.Gets.Load() - gets; n != int64(len(keys)) {
		t.Errorf("%d keys read again, want each once", n)
	}
	if !strings.Contains(b.logs.String(), startOverLogged) {
		t.Errorf("the start-over was not logged:\n%s", b.logs)
	}

	revokeMany(t, ms, 20, (maxChangePages*changesPage)/20+1)
	b.clock.Advance(syncMaxAge)
	b.store.Down.Store(true)
	if got := b.getAll(keys, nil); got[200] != len(keys) {
		t.Errorf("after a start-over, the store down: %v, want 15 × 200 from the cache", got)
	}
}
