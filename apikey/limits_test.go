package apikey

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/limit"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// The rate limits and monthly quotas that Protect enforces per request, and
// the usage endpoint that reports them.

func TestRateLimit(t *testing.T) {
	s := newServer(t, nil, flushByHand)
	key, _ := s.mint(t, "acme", func(k *store.Key) { k.RateLimit, k.Burst = 2, 3 })
	steps := []struct {
		advance                 time.Duration
		status                  int
		remaining, reset, retry string
	}{
		{0, 200, "2", "1", ""},
		{0, 200, "1", "1", ""},
		{0, 200, "0", "2", ""},
		{0, 429, "0", "2", "1"},
		{500 * time.Millisecond, 200, "0", "2", ""}, // one token back
		{100 * time.Millisecond, 429, "0", "2", "1"},
		{2 * time.Second, 200, "2", "1", ""}, // full again
	}
	for i, st := range steps {
		s.clock.Advance(st.advance)
		w := s.do("GET", "/", "", key)
		h := w.Header()
		if w.Code != st.status || h.Get("RateLimit-Limit") != "3" || h.Get("RateLimit-Remaining") != st.remaining ||
			h.Get("RateLimit-Reset") != st.reset || h.Get("Retry-After") != st.retry {
			t.Errorf("step %d: %d Limit %s Remaining %s Reset %s Retry-After %q; want %d 3 %s %s %q", i, w.Code,
				h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"), h.Get("Retry-After"),
				st.status, st.remaining, st.reset, st.retry)
		}
		if w.Code == 429 && testkit.Problem(t, w).Code != "rate_limited" {
			t.Errorf("step %d: code %s", i, testkit.Problem(t, w).Code)
		}
	}
}

// TestRateLimitHeadersOnEveryAnswer: the RateLimit headers of the rate
// limit that applied go with every answer after it was taken: an admitted
// request, a refusal by a quota the rate let through, and the management
// endpoints' own limit, admitted and refused.
func TestRateLimitHeadersOnEveryAnswer(t *testing.T) {
	s := newServer(t, nil, flushByHand)
	key, _ := s.mint(t, "acme", func(k *store.Key) {
		k.RateLimit, k.Burst, k.MonthlyQuota, k.Scopes = 2, 3, 1, []string{scopeKeys}
	})
	want := func(w *httptest.ResponseRecorder, status int, limit, remaining string) {
		t.Helper()
		h := w.Header()
		if w.Code != status || h.Get("RateLimit-Limit") != limit || h.Get("RateLimit-Remaining") != remaining || h.Get("RateLimit-Reset") == "" {
			t.Errorf("%d Limit %q Remaining %q Reset %q; want %d %s %s", w.Code, h.Get("RateLimit-Limit"),
				h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"), status, limit, remaining)
		}
	}
	want(s.do("GET", "/", "", key), 200, "3", "2")
	w := s.do("GET", "/", "", key)
	want(w, 429, "3", "1")
	if p := testkit.Problem(t, w); p.Code != "quota_exceeded" || p.Limit != "key" {
		t.Errorf("over the quota: %+v", p)
	}
	want(s.do("GET", "/v1/keys?limit=1", "", key), 200, strconv.Itoa(keyrules.ManageBurst), strconv.Itoa(keyrules.ManageBurst-1))
	for range keyrules.ManageBurst - 1 {
		s.do("GET", "/v1/keys?limit=1", "", key)
	}
	want(s.do("GET", "/v1/keys?limit=1", "", key), 429, strconv.Itoa(keyrules.ManageBurst), "0")
}

func TestRateLimitDefaults(t *testing.T) {
	st := memstore.New()
	unlimited, _ := testkit.MintKey(t, st, "acme")
	s := newServer(t, st, flushByHand)
	for range 50 {
		if w := s.do("GET", "/", "", unlimited); w.Code != 200 || w.Header().Get("RateLimit-Limit") != "" {
			t.Fatalf("a key without limits = %d with RateLimit-Limit %q", w.Code, w.Header().Get("RateLimit-Limit"))
		}
	}
	d := newServer(t, st, flushByHand, func(c *Config) { c.DefaultRateLimit, c.DefaultBurst = 1, 2 })
	get := func(key string) *httptest.ResponseRecorder { return d.do("GET", "/", "", key) }
	codes := []int{get(unlimited).Code, get(unlimited).Code, get(unlimited).Code}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("default limit 1/s burst 2: %v, want 200 200 429", codes)
	}
	// A key's own limit only tightens its owner's: a looser one does not
	// beat the default, a tighter one applies first.
	loose, _ := d.mint(t, "beta", func(k *store.Key) { k.RateLimit, k.Burst = 100, 100 })
	for i, want := range []int{200, 200, 429} {
		w := get(loose)
		if w.Code != want || w.Header().Get("RateLimit-Limit") != "2" {
			t.Fatalf("looser key, request %d = %d with RateLimit-Limit %q, want %d under the owner's 2", i, w.Code, w.Header().Get("RateLimit-Limit"), want)
		}
	}
	tight, _ := d.mint(t, "gamma", func(k *store.Key) { k.RateLimit, k.Burst = 1, 1 })
	if w := get(tight); w.Code != 200 || w.Header().Get("RateLimit-Limit") != "1" {
		t.Errorf("tighter key = %d with RateLimit-Limit %q, want 200 under its own 1", w.Code, w.Header().Get("RateLimit-Limit"))
	}
	if p := testkit.WantProblem(t, get(tight), 429, "rate_limited"); p.Limit != "key" {
		t.Errorf("tighter key's refusal names %q, want key", p.Limit)
	}
}

func TestQuota(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		s := newServer(t, st, flushByHand, slowStore)
		key, _ := s.mint(t, "acme", func(k *store.Key) { k.MonthlyQuota = 5 })
		for i := range 5 {
			if w := s.do("GET", "/", "", key); w.Code != 200 {
				t.Fatalf("request %d = %d", i, w.Code)
			}
		}
		w := s.do("GET", "/", "", key)
		if w.Code != 429 || testkit.Problem(t, w).Code != "quota_exceeded" {
			t.Fatalf("over the quota = %d %s", w.Code, w.Body)
		}
		// t0 is 2026-11-27 12:00 UTC: the month turns in 3.5 days.
		if got, want := w.Header().Get("Retry-After"), strconv.Itoa(int((84 * time.Hour).Seconds())); got != want {
			t.Errorf("Retry-After = %s, want %s", got, want)
		}
		s.clock.Advance(3 * 24 * time.Hour) // still November; the key is read again
		if w := s.do("GET", "/", "", key); w.Code != 429 {
			t.Errorf("later in the month = %d, want 429", w.Code)
		}
		s.clock.Advance(12 * time.Hour) // December
		for i := range 5 {
			if w := s.do("GET", "/", "", key); w.Code != 200 {
				t.Fatalf("new month, request %d = %d", i, w.Code)
			}
		}
		if w := s.do("GET", "/", "", key); w.Code != 429 {
			t.Errorf("new month, over the quota = %d", w.Code)
		}
	})
}

// TestQuotaAcrossInstances checks that an instance counts what others have
// stored, as of its last read of the key, plus its own requests.
func TestQuotaAcrossInstances(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		a := newServer(t, st, flushByHand, slowStore)
		key, _ := a.mint(t, "acme", func(k *store.Key) { k.MonthlyQuota = 10 })
		for range 6 {
			a.do("GET", "/", "", key)
		}
		if err := a.meter.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		b := newServer(t, st, flushByHand, slowStore) // reads the key, and its month total 6
		allowed := 0
		for range 10 {
			if b.do("GET", "/", "", key).Code == 200 {
				allowed++
			}
		}
		if allowed != 4 {
			t.Errorf("the second instance allowed %d, want 4", allowed)
		}
		// The first instance still believes 6 were made: its refresh is due
		// within KEY_CACHE_TTL. That is the documented over-admission.
		if w := a.do("GET", "/", "", key); w.Code != 200 {
			t.Errorf("first instance = %d", w.Code)
		}
	})
}

func TestUsageEndpoint(t *testing.T) {
	st := memstore.New()
	s := newServer(t, st, flushByHand)
	key, k := s.mint(t, "acme", func(k *store.Key) { k.MonthlyQuota = 1000 })
	noScope, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
	st.AddUsage(context.Background(), "old", 1, []store.UsageCount{{KeyID: k.ID, Day: "2026-11-01", Requests: 7}, {KeyID: k.ID, Day: "2026-10-31", Requests: 3}})
	for range 4 {
		s.do("GET", "/", "", key)
	}
	s.meter.Flush(context.Background())
	s.clock.Advance(24 * time.Hour)
	s.do("GET", "/", "", key) // not flushed: counted all the same

	var v view.UsageView
	testkit.MustJSON(t, s.do("GET", "/v1/usage?from=2026-10-30&to=2026-11-28", "", key), 200, &v)
	// November: 7 stored before, 4 on the 27th, and on the 28th one GET /;
	// not this request, which is management (manage.go).
	if v.Month != "2026-11" || v.MonthTotal != 7+4+1 || v.MonthlyQuota == nil || *v.MonthlyQuota != 1000 {
		t.Errorf("usage = %+v", v)
	}
	want := []store.DayUsage{{Day: "2026-10-31", Requests: 3}, {Day: "2026-11-01", Requests: 7},
		{Day: "2026-11-27", Requests: 4}, {Day: "2026-11-28", Requests: 1}}
	if len(v.Days) != len(want) {
		t.Fatalf("days = %v, want %v", v.Days, want)
	}
	for i := range want {
		if v.Days[i] != want[i] {
			t.Errorf("days = %v, want %v", v.Days, want)
			break
		}
	}
	for _, c := range []struct{ query, code string }{
		{"from=2026-13-01", "invalid_date"},
		{"to=yesterday", "invalid_date"},
		{"from=2026-11-10&to=2026-11-01", "invalid_date"},
		{"from=2026-01-01&to=2026-11-28", "invalid_date"},
	} {
		testkit.WantProblem(t, s.do("GET", "/v1/usage?"+c.query, "", key), 400, c.code)
	}
	testkit.WantProblem(t, s.do("GET", "/v1/usage", "", noScope), 403, "insufficient_scope")
}

// BenchmarkMeteredHotPath compares one authorized GET / through auth alone
// with the same request through the whole server: auth, scope, quota, rate
// limit and metering (the key has a rate limit it never reaches and a
// quota).
func BenchmarkMeteredHotPath(b *testing.B) {
	s := newRealServer(b, nil, flushByHand)
	key, _ := s.mint(b, "acme", func(k *store.Key) { k.RateLimit, k.Burst, k.MonthlyQuota = 1e6, 1e6, 1e12 })
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}` + "\n"))
	})
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"auth", s.Authenticate(hello)}, {"auth+limits+meter", s}} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-API-Key", key)
			w := httptest.NewRecorder()
			c.h.ServeHTTP(w, r) // warm the cache
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
			b.ReportAllocs()
			for b.Loop() {
				w.Body.Reset()
				c.h.ServeHTTP(w, r)
			}
		})
	}
}

// TestQuotaReadOnlyForQuotaKeys checks that reading the month total costs a
// store call only for keys with a quota, once per key refresh.
func TestQuotaReadOnlyForQuotaKeys(t *testing.T) {
	st := &readCounter{Store: memstore.New()}
	monthReads := func() int64 { return st.keyMonths.Load() + st.keyBoth.Load() }
	s := newServer(t, st, flushByHand)
	plain, _ := s.mint(t, "acme")
	quota, _ := s.mint(t, "acme", func(k *store.Key) { k.MonthlyQuota = 100 })
	for range 3 { // three fresh windows
		for range 5 {
			s.do("GET", "/", "", plain)
		}
		s.clock.Advance(time.Minute)
	}
	if n := monthReads(); n != 0 {
		t.Errorf("a key without a quota cost %d month reads, want 0", n)
	}
	for range 3 {
		for range 5 {
			s.do("GET", "/", "", quota)
		}
		s.waitRefreshes() // a stale key is refreshed in the background
		s.clock.Advance(time.Minute)
	}
	if n := monthReads(); n != 3 {
		t.Errorf("a key with a quota cost %d month reads in 3 windows, want 3", n)
	}
}

// TestQuotaExactUnderConcurrency sends 64 requests at once on a quota of 10:
// the quota check and the count are one step, so exactly 10 pass, every
// time, and exactly 10 are stored.
func TestQuotaExactUnderConcurrency(t *testing.T) {
	for _, impl := range testkit.Stores {
		t.Run(impl.Name, func(t *testing.T) {
			st := impl.New(t)
			trials := 20
			if impl.Name == "firestore" {
				trials = 3
			}
			for trial := range trials {
				s := newServer(t, st, flushByHand, slowStore)
				// A rate limit far above the burst, as most quota keys have.
				key, k := s.mint(t, "acme", func(k *store.Key) { k.MonthlyQuota, k.RateLimit, k.Burst = 10, 1000, 100 })
				srv := httptest.NewServer(s)
				defer srv.Close()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
				admitted, refused := testkit.Burst(t, client, []string{srv.URL}, key, 64)
				if admitted != 10 || refused != 54 {
					t.Fatalf("trial %d: %d admitted, %d refused; want 10 and 54", trial, admitted, refused)
				}
				if err := s.meter.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				if n := monthTotal(t, st, k.ID); n != 10 {
					t.Fatalf("trial %d: stored %d, want 10", trial, n)
				}
			}
		})
	}
}

// slowUsageStore is a memory store whose AddUsage returns a while after it
// has applied a batch, as a remote commit does: a reader then sees the
// batch in the store while the meter still waits for its outcome.
type slowUsageStore struct{ *memstore.Store }

func (s slowUsageStore) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	err := s.Store.AddUsage(ctx, instance, seq, counts)
	time.Sleep(time.Millisecond)
	return err
}

// TestUsageConsistentDuringFlushes reads GET /v1/usage while flushes commit
// all the time: every answer counts each request answered before it exactly
// once (not itself: it is management), never less and never more.
func TestUsageConsistentDuringFlushes(t *testing.T) {
	s := newServer(t, slowUsageStore{memstore.New()}, flushByHand)
	key, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeUsage} })
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				s.meter.Flush(context.Background())
			}
		}
	})
	defer func() { close(done); wg.Wait() }()
	for i := 1; i <= 300; i++ {
		s.clock.Advance(time.Second / keyrules.ManageRate) // within the management limit
		if w := s.do("GET", "/", "", key); w.Code != 200 {
			t.Fatalf("GET / = %d", w.Code)
		}
		var v view.UsageView
		testkit.MustJSON(t, s.do("GET", "/v1/usage", "", key), 200, &v)
		if want := int64(i); v.MonthTotal != want {
			t.Fatalf("round %d: month_total = %d, want %d", i, v.MonthTotal, want)
		}
	}
}

// TestLimitOf: the limiters' whose-limit converts to the Error's Limit, the
// "limit" member of a problem body, as docs/api.md lists them.
func TestLimitOf(t *testing.T) {
	for w, want := range map[limit.Which]Limit{limit.None: "", limit.Key: LimitKey, limit.Owner: LimitOwner, limit.Management: LimitManagement} {
		if got := limitOf(w); got != want {
			t.Errorf("limitOf(%d) = %q, want %q", w, got, want)
		}
	}
	for l, want := range map[Limit]string{LimitKey: "key", LimitOwner: "owner", LimitManagement: "management"} {
		if string(l) != want {
			t.Errorf("Limit %q, want %q as docs/api.md says", l, want)
		}
	}
}
