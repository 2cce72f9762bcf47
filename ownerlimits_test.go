package keygate

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// setPlan stores the owner's plan in store, which must keep plans.
func setPlan(t *testing.T, store store.KeyStore, p store.Plan) {
	t.Helper()
	if err := store.(store.PlanStore).SetPlan(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// ownerKeys mints n keys of owner in store.
func ownerKeys(t *testing.T, store store.KeyStore, owner string, n int, change ...func(*store.Key)) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i], _ = mintTestKey(t, store, owner, change...)
	}
	return keys
}

// TestOwnerQuotaShared: three keys of an owner whose plan has a quota of 30
// admit exactly 30 requests in all, sequentially and under 64-way
// concurrency, and the refusal names the owner's limit.
func TestOwnerQuotaShared(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			t.Run("sequential", func(t *testing.T) {
				store := impl.new(t)
				setPlan(t, store, store.Plan{Owner: "acme", MonthlyQuota: 30})
				s, _ := limitsServer(t, store, func(c *Config) { c.StoreTimeout = 20 * time.Second })
				keys := ownerKeys(t, store, "acme", 3)
				admitted := 0
				for i := range 45 {
					switch w := get(s, keys[i%3]); w.Code {
					case 200:
						admitted++
					case 429:
						if p := problemOf(t, w); p.Code != "quota_exceeded" || p.Limit != "owner" {
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
				store := impl.new(t)
				setPlan(t, store, store.Plan{Owner: "acme", MonthlyQuota: 30})
				s, _ := limitsServer(t, store, func(c *Config) { c.StoreTimeout = 20 * time.Second })
				keys := ownerKeys(t, store, "acme", 3)
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
				if err := s.Meter().Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				if n, err := store.OwnerMonthlyUsage(context.Background(), "acme", store.MonthOf(t0)); err != nil || n != 30 {
					t.Errorf("owner's stored month = %d, %v; want 30", n, err)
				}
			})
		})
	}
}

// TestOwnerRateShared: two keys share their owner's rate of 1 per second
// with a burst of 3, and the headers and the refusal describe that limit.
func TestOwnerRateShared(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) { testOwnerRateShared(t, impl.new(t)) })
	}
}

func testOwnerRateShared(t *testing.T, store store) {
	setPlan(t, store, store.Plan{Owner: "acme", RateLimit: 1, Burst: 3})
	s, clock := limitsServer(t, store, func(c *Config) { c.StoreTimeout = 20 * time.Second })
	keys := ownerKeys(t, store, "acme", 2)
	for i := range 3 {
		w := get(s, keys[i%2])
		if w.Code != 200 || w.Header().Get("RateLimit-Limit") != "3" {
			t.Fatalf("request %d = %d, RateLimit-Limit %q", i, w.Code, w.Header().Get("RateLimit-Limit"))
		}
	}
	w := get(s, keys[1])
	if p := wantProblem(t, w, 429, "rate_limited"); p.Limit != "owner" {
		t.Errorf("limit = %q, want owner", p.Limit)
	}
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	clock.Advance(time.Second)
	if w := get(s, keys[0]); w.Code != 200 {
		t.Errorf("a second later = %d, want 200", w.Code)
	}
	if w := get(s, keys[1]); w.Code != 429 {
		t.Errorf("and again = %d, want 429", w.Code)
	}
	other, _ := mintTestKey(t, store, "other")
	if w := get(s, other); w.Code != 200 {
		t.Errorf("another owner's key = %d, want 200: owners do not share buckets", w.Code)
	}
}

// TestKeyLimitsTighterThanPlan: a key's own quota and rate, tighter than its
// owner's plan, apply to it alone, and the refusals name the key's limit.
func TestKeyLimitsTighterThanPlan(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			store := impl.new(t)
			setPlan(t, store, store.Plan{Owner: "acme", MonthlyQuota: 30, RateLimit: 100, Burst: 100})
			s, _ := limitsServer(t, store, func(c *Config) { c.StoreTimeout = 20 * time.Second })
			tight, _ := mintTestKey(t, store, "acme", func(k *store.Key) { k.MonthlyQuota = 5 })
			slow, _ := mintTestKey(t, store, "acme", func(k *store.Key) { k.RateLimit, k.Burst = 1, 2 })
			sibling, _ := mintTestKey(t, store, "acme")
			for i := range 5 {
				if w := get(s, tight); w.Code != 200 {
					t.Fatalf("tight key, request %d = %d", i, w.Code)
				}
			}
			if p := wantProblem(t, get(s, tight), 429, "quota_exceeded"); p.Limit != "key" {
				t.Errorf("tight key's refusal names %q, want key", p.Limit)
			}
			for i := range 2 {
				if w := get(s, slow); w.Code != 200 || w.Header().Get("RateLimit-Limit") != "2" {
					t.Fatalf("slow key, request %d = %d, RateLimit-Limit %q", i, w.Code, w.Header().Get("RateLimit-Limit"))
				}
			}
			if p := wantProblem(t, get(s, slow), 429, "rate_limited"); p.Limit != "key" {
				t.Errorf("slow key's refusal names %q, want key", p.Limit)
			}
			if w := get(s, sibling); w.Code != 200 {
				t.Errorf("sibling = %d, want 200: the keys' own limits are theirs alone", w.Code)
			}
		})
	}
}

// TestPlanChangeAfterCacheTTL: a changed plan applies on an instance once
// its copy is older than KEY_CACHE_TTL (the request after that starts a
// read; the ones after its answer follow the new plan), not before.
func TestPlanChangeAfterCacheTTL(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			store := impl.new(t)
			s, clock := limitsServer(t, store, func(c *Config) { c.StoreTimeout = 20 * time.Second })
			key, _ := mintTestKey(t, store, "acme")
			for range 3 {
				if w := get(s, key); w.Code != 200 {
					t.Fatalf("before the plan = %d", w.Code)
				}
			}
			setPlan(t, store, store.Plan{Owner: "acme", MonthlyQuota: 3})
			clock.Advance(s.keys.fresh - time.Second)
			if w := get(s, key); w.Code != 200 {
				t.Errorf("inside KEY_CACHE_TTL = %d, want 200: the old plan", w.Code)
			}
			clock.Advance(time.Second)
			get(s, key) // served on the old plan; reads the new one
			s.keys.owners.bg.Wait()
			waitRefreshes(s.keys)
			if w := get(s, key); w.Code != 429 || problemOf(t, w).Limit != "owner" {
				t.Errorf("after KEY_CACHE_TTL = %d %s, want the owner's quota_exceeded", w.Code, w.Body)
			}
		})
	}
}

// TestUsageShowsOwner: GET /v1/usage shows the owner's month, all its keys
// together with what this instance has not written yet, against its plan.
func TestUsageShowsOwner(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			store := impl.new(t)
			setPlan(t, store, store.Plan{Owner: "acme", MonthlyQuota: 30})
			s, _ := limitsServer(t, store, func(c *Config) { c.StoreTimeout = 20 * time.Second })
			a, _ := mintTestKey(t, store, "acme")
			b, _ := mintTestKey(t, store, "acme", func(k *store.Key) { k.Scopes = []string{ScopeUsageRead} })
			hit(t, s, a, 3)
			if err := s.Meter().Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			hit(t, s, b, 2) // not written yet
			r := httptest.NewRequest("GET", "/v1/usage", nil)
			r.Header.Set("X-API-Key", b)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			var v UsageView
			mustJSON(t, w, 200, &v)
			if v.MonthTotal != 3 || v.Owner == nil || v.Owner.Owner != "acme" || v.Owner.MonthTotal != 6 ||
				v.Owner.MonthlyQuota == nil || *v.Owner.MonthlyQuota != 30 {
				t.Errorf("usage = %+v, owner %+v; want the key's 3 and the owner's 6 of 30", v, v.Owner)
			}
		})
	}
}

// readCounter is a memory store that counts the reads of the request path:
// keys, their month totals, alone or batched with the key, and owners'
// plans and month totals, alone or batched.
type readCounter struct {
	*memstore.Store
	gets, keyMonths, keyBoth, plans, ownerMonths, ownerBoth atomic.Int64
}

func (s *readCounter) Get(ctx context.Context, id string) (store.Key, error) {
	s.gets.Add(1)
	return s.MemoryStore.Get(ctx, id)
}

func (s *readCounter) MonthlyUsage(ctx context.Context, id string, m store.Month) (int64, error) {
	s.keyMonths.Add(1)
	return s.MemoryStore.MonthlyUsage(ctx, id, m)
}

func (s *readCounter) ReadKey(ctx context.Context, id string, m store.Month) (store.Key, int64, error) {
	s.keyBoth.Add(1)
	return s.MemoryStore.ReadKey(ctx, id, m)
}

func (s *readCounter) GetPlan(ctx context.Context, owner string) (store.Plan, error) {
	s.plans.Add(1)
	return s.MemoryStore.GetPlan(ctx, owner)
}

func (s *readCounter) OwnerMonthlyUsage(ctx context.Context, owner string, m store.Month) (int64, error) {
	s.ownerMonths.Add(1)
	return s.MemoryStore.OwnerMonthlyUsage(ctx, owner, m)
}

func (s *readCounter) ReadOwner(ctx context.Context, owner string, m store.Month) (store.Plan, bool, int64, error) {
	s.ownerBoth.Add(1)
	return s.MemoryStore.ReadOwner(ctx, owner, m)
}

// TestOwnerReadsShared counts the store reads of three keys of one owner
// with a quota: the owner's plan and month total are read once for all its
// keys, and refreshed in one batched read per KEY_CACHE_TTL.
func TestOwnerReadsShared(t *testing.T) {
	store := &readCounter{MemoryStore: memstore.New()}
	setPlan(t, store, store.Plan{Owner: "acme", MonthlyQuota: 1000})
	s, clock := limitsServer(t, store)
	keys := ownerKeys(t, store, "acme", 3)
	counts := func() [4]int64 {
		s.keys.owners.bg.Wait()
		waitRefreshes(s.keys)
		return [4]int64{store.gets.Load(), store.plans.Load(), store.ownerMonths.Load(), store.ownerBoth.Load()}
	}
	for range 10 {
		for _, k := range keys {
			hit(t, s, k, 1)
		}
	}
	if got, want := counts(), [4]int64{3, 1, 1, 0}; got != want {
		t.Errorf("cold: key gets, plan gets, month reads, batched owner reads = %v, want %v", got, want)
	}
	clock.Advance(s.keys.fresh)
	for _, k := range keys {
		hit(t, s, k, 1)
	}
	if got, want := counts(), [4]int64{6, 1, 1, 1}; got != want {
		t.Errorf("after KEY_CACHE_TTL: %v, want %v (one batched read for the owner)", got, want)
	}
}

// TestReadOwner checks OwnerReader on both stores against GetPlan and
// OwnerMonthlyUsage.
func TestReadOwner(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			store := impl.new(t)
			ctx := context.Background()
			r := store.(store.OwnerReader)
			if p, found, n, err := r.ReadOwner(ctx, "acme", "2026-11"); err != nil || found || n != 0 || p.Owner != "acme" {
				t.Errorf("no plan, no usage = %+v, %v, %d, %v", p, found, n, err)
			}
			setPlan(t, store, store.Plan{Owner: "acme", MonthlyQuota: 30, MaxKeys: 7})
			if err := store.AddUsage(ctx, "i", 1, []store.UsageCount{{KeyID: "k", Owner: "acme", Day: "2026-11-27", Requests: 4}}); err != nil {
				t.Fatal(err)
			}
			p, found, n, err := r.ReadOwner(ctx, "acme", "2026-11")
			if err != nil || !found || n != 4 || p.MonthlyQuota != 30 || p.MaxKeys != 7 {
				t.Errorf("ReadOwner = %+v, %v, %d, %v; want the plan and 4", p, found, n, err)
			}
			if _, _, _, err := r.ReadOwner(ctx, "acme/eu", "2026-11"); !errors.Is(err, store.ErrInvalidOwner) {
				t.Errorf("invalid owner = %v, want ErrInvalidOwner", err)
			}
		})
	}
}

// TestKeyQuotaReadBatched: a key with a quota of its own is read, after its
// first read, together with its month total in one round trip.
func TestKeyQuotaReadBatched(t *testing.T) {
	store := &readCounter{MemoryStore: memstore.New()}
	s, clock := limitsServer(t, store)
	key, _ := mintTestKey(t, store, "acme", func(k *store.Key) { k.MonthlyQuota = 100 })
	counts := func() [3]int64 {
		waitRefreshes(s.keys)
		return [3]int64{store.gets.Load(), store.keyMonths.Load(), store.keyBoth.Load()}
	}
	hit(t, s, key, 5)
	if got, want := counts(), [3]int64{1, 1, 0}; got != want {
		t.Errorf("cold: gets, month reads, batched reads = %v, want %v", got, want)
	}
	clock.Advance(s.keys.fresh)
	hit(t, s, key, 1)
	if got, want := counts(), [3]int64{1, 1, 1}; got != want {
		t.Errorf("after KEY_CACHE_TTL: %v, want %v", got, want)
	}
}

// TestReadKey checks KeyReader on both stores.
func TestReadKey(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			store := impl.new(t)
			ctx := context.Background()
			_, k := mintTestKey(t, store, "acme", func(k *store.Key) { k.MonthlyQuota = 9 })
			if err := store.AddUsage(ctx, "i", 1, []store.UsageCount{{KeyID: k.ID, Owner: "acme", Day: "2026-11-27", Requests: 4}}); err != nil {
				t.Fatal(err)
			}
			got, n, err := store.(store.KeyReader).ReadKey(ctx, k.ID, "2026-11")
			if err != nil || got.ID != k.ID || got.MonthlyQuota != 9 || n != 4 {
				t.Errorf("ReadKey = %+v, %d, %v; want the key and 4", got, n, err)
			}
			if _, n, err := store.(store.KeyReader).ReadKey(ctx, k.ID, "2026-10"); err != nil || n != 0 {
				t.Errorf("a month without usage = %d, %v; want 0", n, err)
			}
			if _, _, err := store.(store.KeyReader).ReadKey(ctx, keyformat.ID("kg_nope"), "2026-11"); !errors.Is(err, store.ErrKeyNotFound) {
				t.Errorf("unknown key = %v, want ErrKeyNotFound", err)
			}
		})
	}
}
