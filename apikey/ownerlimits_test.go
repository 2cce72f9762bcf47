package apikey

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// The owners' plans, enforced per request over all the owner's keys, and
// the store reads they cost.

// setPlan stores the owner's plan in s.
func setPlan(t testing.TB, s store.PlanStore, p store.Plan) {
	t.Helper()
	if err := s.SetPlan(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// ownerKeys mints n keys of owner in s.
func ownerKeys(t *testing.T, s store.KeyStore, owner string, n int, change ...func(*store.Key)) []string {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i], _ = testkit.MintKey(t, s, owner, change...)
	}
	return keys
}

// TestOwnerQuotaShared: three keys of an owner whose plan has a quota of 30
// admit exactly 30 requests in all, sequentially and under 64-way
// concurrency, and the refusal names the owner's limit.
func TestOwnerQuotaShared(t *testing.T) {
	for _, impl := range testkit.Stores {
		t.Run(impl.Name, func(t *testing.T) {
			t.Run("sequential", func(t *testing.T) {
				st := impl.New(t)
				setPlan(t, st, store.Plan{Owner: "acme", MonthlyQuota: 30})
				s := newServer(t, st, flushByHand, slowStore)
				keys := ownerKeys(t, st, "acme", 3)
				admitted := 0
				for i := range 45 {
					switch w := s.do("GET", "/", "", keys[i%3]); w.Code {
					case 200:
						admitted++
					case 429:
						if p := testkit.Problem(t, w); p.Code != "quota_exceeded" || p.Limit != "owner" {
							t.Fatalf("refusal = %+v, want quota_exceeded of the owner", p)
						}
					default:
						t.Fatalf("status %d %s", w.Code, w.Body)
					}
				}
				if admitted != 30 {
					t.Errorf("admitted %d, want 30", admitted)
				}
			})
			t.Run("concurrent", func(t *testing.T) {
				st := impl.New(t)
				setPlan(t, st, store.Plan{Owner: "acme", MonthlyQuota: 30})
				s := newServer(t, st, flushByHand, slowStore)
				keys := ownerKeys(t, st, "acme", 3)
				srv := httptest.NewServer(s)
				defer srv.Close()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
				var admitted atomic.Int64
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range 64 {
					wg.Go(func() {
						req, _ := http.NewRequest("GET", srv.URL, nil)
						req.Header.Set("X-API-Key", keys[i%3])
						<-start
						resp, err := client.Do(req)
						if err != nil {
							t.Error(err)
							return
						}
						resp.Body.Close()
						if resp.StatusCode == 200 {
							admitted.Add(1)
						} else if resp.StatusCode != 429 {
							t.Errorf("status %d", resp.StatusCode)
						}
					})
				}
				close(start)
				wg.Wait()
				if admitted.Load() != 30 {
					t.Errorf("admitted %d of 64, want 30", admitted.Load())
				}
				if err := s.meter.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				if n, err := st.OwnerMonthlyUsage(context.Background(), "acme", store.MonthOf(t0)); err != nil || n != 30 {
					t.Errorf("owner's stored month = %d, %v; want 30", n, err)
				}
			})
		})
	}
}

// TestOwnerRateShared: two keys share their owner's rate of 1 per second
// with a burst of 3, and the headers and the refusal describe that limit.
func TestOwnerRateShared(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		setPlan(t, st, store.Plan{Owner: "acme", RateLimit: 1, Burst: 3})
		s := newServer(t, st, flushByHand, slowStore)
		keys := ownerKeys(t, st, "acme", 2)
		for i := range 3 {
			w := s.do("GET", "/", "", keys[i%2])
			if w.Code != 200 || w.Header().Get("RateLimit-Limit") != "3" {
				t.Fatalf("request %d = %d, RateLimit-Limit %q", i, w.Code, w.Header().Get("RateLimit-Limit"))
			}
		}
		w := s.do("GET", "/", "", keys[1])
		if p := testkit.WantProblem(t, w, 429, "rate_limited"); p.Limit != "owner" {
			t.Errorf("limit = %q, want owner", p.Limit)
		}
		if got := w.Header().Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1", got)
		}
		s.clock.Advance(time.Second)
		if w := s.do("GET", "/", "", keys[0]); w.Code != 200 {
			t.Errorf("a second later = %d, want 200", w.Code)
		}
		if w := s.do("GET", "/", "", keys[1]); w.Code != 429 {
			t.Errorf("and again = %d, want 429", w.Code)
		}
		other, _ := s.mint(t, "other")
		if w := s.do("GET", "/", "", other); w.Code != 200 {
			t.Errorf("another owner's key = %d, want 200: owners do not share buckets", w.Code)
		}
	})
}

// TestKeyLimitsTighterThanPlan: a key's own quota and rate, tighter than its
// owner's plan, apply to it alone, and the refusals name the key's limit.
func TestKeyLimitsTighterThanPlan(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		setPlan(t, st, store.Plan{Owner: "acme", MonthlyQuota: 30, RateLimit: 100, Burst: 100})
		s := newServer(t, st, flushByHand, slowStore)
		tight, _ := s.mint(t, "acme", func(k *store.Key) { k.MonthlyQuota = 5 })
		slow, _ := s.mint(t, "acme", func(k *store.Key) { k.RateLimit, k.Burst = 1, 2 })
		sibling, _ := s.mint(t, "acme")
		for i := range 5 {
			if w := s.do("GET", "/", "", tight); w.Code != 200 {
				t.Fatalf("tight key, request %d = %d", i, w.Code)
			}
		}
		if p := testkit.WantProblem(t, s.do("GET", "/", "", tight), 429, "quota_exceeded"); p.Limit != "key" {
			t.Errorf("tight key's refusal names %q, want key", p.Limit)
		}
		for i := range 2 {
			if w := s.do("GET", "/", "", slow); w.Code != 200 || w.Header().Get("RateLimit-Limit") != "2" {
				t.Fatalf("slow key, request %d = %d, RateLimit-Limit %q", i, w.Code, w.Header().Get("RateLimit-Limit"))
			}
		}
		if p := testkit.WantProblem(t, s.do("GET", "/", "", slow), 429, "rate_limited"); p.Limit != "key" {
			t.Errorf("slow key's refusal names %q, want key", p.Limit)
		}
		if w := s.do("GET", "/", "", sibling); w.Code != 200 {
			t.Errorf("sibling = %d, want 200: the keys' own limits are theirs alone", w.Code)
		}
	})
}

// TestPlanChangeAfterCacheTTL: a plan changed outside keygate (see
// editedOutside; through keygate, the change feed tells the Gate: see
// changes_test.go) applies on an instance once its copy is older than
// KEY_CACHE_TTL (the request after that starts a read; the ones after its
// answer follow the new plan), not before.
func TestPlanChangeAfterCacheTTL(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		s := newServer(t, editedOutside(st), flushByHand, slowStore)
		key, _ := s.mint(t, "acme")
		for range 3 {
			if w := s.do("GET", "/", "", key); w.Code != 200 {
				t.Fatalf("before the plan = %d", w.Code)
			}
		}
		setPlan(t, st, store.Plan{Owner: "acme", MonthlyQuota: 3})
		s.clock.Advance(s.cfg.CacheTTL - time.Second)
		if w := s.do("GET", "/", "", key); w.Code != 200 {
			t.Errorf("inside KEY_CACHE_TTL = %d, want 200: the old plan", w.Code)
		}
		s.clock.Advance(time.Second)
		s.do("GET", "/", "", key) // served on the old plan; reads the new one
		s.waitRefreshes()
		if w := s.do("GET", "/", "", key); w.Code != 429 || testkit.Problem(t, w).Limit != "owner" {
			t.Errorf("after KEY_CACHE_TTL = %d %s, want the owner's quota_exceeded", w.Code, w.Body)
		}
	})
}

// TestUsageShowsOwner: GET /v1/usage shows the owner's month, all its keys
// together with what this instance has not written yet, against its plan.
func TestUsageShowsOwner(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		setPlan(t, st, store.Plan{Owner: "acme", MonthlyQuota: 30})
		s := newServer(t, st, flushByHand, slowStore)
		a, _ := s.mint(t, "acme")
		b, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeUsage} })
		hit(t, s, a, 3)
		if err := s.meter.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		hit(t, s, b, 2) // not written yet
		var v view.UsageView
		testkit.MustJSON(t, s.do("GET", "/v1/usage", "", b), 200, &v)
		// Not this request: it is management (manage.go).
		if v.MonthTotal != 2 || v.Owner == nil || v.Owner.Owner != "acme" || v.Owner.MonthTotal != 5 ||
			v.Owner.MonthlyQuota == nil || *v.Owner.MonthlyQuota != 30 {
			t.Errorf("usage = %+v, owner %+v; want the key's 2 and the owner's 5 of 30", v, v.Owner)
		}
	})
}

// readCounter is a memory store that counts the reads of the request path:
// keys, their month totals, alone or batched with the key, and owners'
// plans and month totals, alone or batched.
type readCounter struct {
	*memstore.Store
	gets, keyMonths, keyBoth, plans, ownerMonths, ownerBoth, feed atomic.Int64
}

// reads is every read counted. (The meter's usage writes are not reads.)
func (s *readCounter) reads() int64 {
	return s.gets.Load() + s.keyMonths.Load() + s.keyBoth.Load() + s.plans.Load() + s.ownerMonths.Load() + s.ownerBoth.Load() + s.feed.Load()
}

func (s *readCounter) Changes(ctx context.Context, after store.ChangeCursor, limit int) ([]store.Change, store.ChangeCursor, error) {
	s.feed.Add(1)
	return s.Store.Changes(ctx, after, limit)
}

func (s *readCounter) Get(ctx context.Context, id string) (store.Key, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, id)
}

func (s *readCounter) MonthlyUsage(ctx context.Context, id string, m store.Month) (int64, error) {
	s.keyMonths.Add(1)
	return s.Store.MonthlyUsage(ctx, id, m)
}

func (s *readCounter) ReadKey(ctx context.Context, id string, m store.Month) (store.Key, int64, error) {
	s.keyBoth.Add(1)
	return s.Store.ReadKey(ctx, id, m)
}

func (s *readCounter) GetPlan(ctx context.Context, owner string) (store.Plan, error) {
	s.plans.Add(1)
	return s.Store.GetPlan(ctx, owner)
}

func (s *readCounter) OwnerMonthlyUsage(ctx context.Context, owner string, m store.Month) (int64, error) {
	s.ownerMonths.Add(1)
	return s.Store.OwnerMonthlyUsage(ctx, owner, m)
}

func (s *readCounter) ReadOwner(ctx context.Context, owner string, m store.Month) (store.Plan, bool, int64, error) {
	s.ownerBoth.Add(1)
	return s.Store.ReadOwner(ctx, owner, m)
}

// TestOwnerReadsShared counts the store reads of three keys of one owner
// with a quota: the owner's plan and month total are read once for all its
// keys, and refreshed in one batched read per KEY_CACHE_TTL.
func TestOwnerReadsShared(t *testing.T) {
	st := &readCounter{Store: memstore.New()}
	setPlan(t, st, store.Plan{Owner: "acme", MonthlyQuota: 1000})
	s := newServer(t, st, flushByHand)
	keys := ownerKeys(t, st, "acme", 3)
	counts := func() [4]int64 {
		s.waitRefreshes()
		return [4]int64{st.gets.Load(), st.plans.Load(), st.ownerMonths.Load(), st.ownerBoth.Load()}
	}
	for range 10 {
		for _, k := range keys {
			hit(t, s, k, 1)
		}
	}
	if got, want := counts(), [4]int64{3, 1, 1, 0}; got != want {
		t.Errorf("cold: key gets, plan gets, month reads, batched owner reads = %v, want %v", got, want)
	}
	s.clock.Advance(s.cfg.CacheTTL)
	for _, k := range keys {
		hit(t, s, k, 1)
	}
	if got, want := counts(), [4]int64{6, 1, 1, 1}; got != want {
		t.Errorf("after KEY_CACHE_TTL: %v, want %v (one batched read for the owner)", got, want)
	}
}

// TestKeyQuotaReadBatched: a key with a quota of its own is read, after its
// first read, together with its month total in one round trip.
func TestKeyQuotaReadBatched(t *testing.T) {
	st := &readCounter{Store: memstore.New()}
	s := newServer(t, st, flushByHand)
	key, _ := s.mint(t, "acme", func(k *store.Key) { k.MonthlyQuota = 100 })
	counts := func() [3]int64 {
		s.waitRefreshes()
		return [3]int64{st.gets.Load(), st.keyMonths.Load(), st.keyBoth.Load()}
	}
	hit(t, s, key, 5)
	if got, want := counts(), [3]int64{1, 1, 0}; got != want {
		t.Errorf("cold: gets, month reads, batched reads = %v, want %v", got, want)
	}
	s.clock.Advance(s.cfg.CacheTTL)
	hit(t, s, key, 1)
	if got, want := counts(), [3]int64{1, 1, 1}; got != want {
		t.Errorf("after KEY_CACHE_TTL: %v, want %v", got, want)
	}
}
