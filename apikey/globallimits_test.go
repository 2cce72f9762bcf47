package apikey

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testkit"
)

// Global limits: two Gates (two instances) on one Firestore emulator and
// one real redis-server.

// onRedis points a Gate at srv, with a deadline long enough for hundreds of
// concurrent requests on a shared, race-instrumented machine: these tests
// are of exactness; the outage tests keep the default deadline.
func onRedis(srv *redistest.Server, timeout time.Duration) func(*Config) {
	return func(c *Config) { c.RedisURL, c.RedisTimeout = srv.URL(), timeout }
}

// sharedInstances returns two Gates with the real clock on one emulator
// store and one Redis (none when perInstance: the embedded default), and the
// store.
func sharedInstances(t *testing.T, perInstance bool, timeout time.Duration, plan store.Plan) (a, b *server, st store.Store, rds *redistest.Server) {
	t.Helper()
	change := func(*Config) {}
	if !perInstance {
		rds = redistest.Start(t)
		change = onRedis(rds, timeout)
	}
	st = testkit.EmulatorStore(t)
	setPlan(t, st, plan)
	a = newRealServer(t, st, change)
	b = newRealServer(t, st, change)
	return a, b, st, rds
}

// closeBoth closes the Gates, writing their counts.
func closeBoth(t *testing.T, gates ...*server) {
	t.Helper()
	for _, g := range gates {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := g.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}

// TestGlobalQuotaTwoInstances: a quota of 50 under 200 concurrent requests
// at each of two instances admits exactly 50 in all, and 50 are stored:
// the owner's quota (a plan) and a key's own. Without Redis (the per-instance
// default), each instance admits the whole quota before it learns of the
// other's requests: 100, the bound docs/reference.md states.
func TestGlobalQuotaTwoInstances(t *testing.T) {
	for _, c := range []struct {
		name, limit string
		perInstance bool
		plan        store.Plan
		key         func(*store.Key)
		want        int64
	}{
		{"owner", "owner", false, store.Plan{Owner: "acme", MonthlyQuota: 50}, func(*store.Key) {}, 50},
		{"key", "key", false, store.Plan{Owner: "acme"}, func(k *store.Key) { k.MonthlyQuota = 50 }, 50},
		{"owner per instance", "owner", true, store.Plan{Owner: "acme", MonthlyQuota: 50}, func(*store.Key) {}, 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b, st, _ := sharedInstances(t, c.perInstance, 10*time.Second, c.plan)
			key, k := testkit.MintKey(t, st, "acme", c.key)
			var admitted, refused atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, g := range []*server{a, b} {
				for range 200 {
					wg.Go(func() {
						<-start
						switch w := g.do("GET", "/", "", key); w.Code {
						case 200:
							admitted.Add(1)
						case 429:
							if p := testkit.Problem(t, w); p.Code != "quota_exceeded" || p.Limit != c.limit {
								t.Errorf("refusal %+v, want quota_exceeded of the %s", p, c.limit)
							}
							refused.Add(1)
						default:
							t.Errorf("status %d %s", w.Code, w.Body)
						}
					})
				}
			}
			close(start)
			wg.Wait()
			closeBoth(t, a, b)
			month := store.MonthOf(time.Now())
			stored, err := st.MonthlyUsage(context.Background(), k.ID, month)
			if err != nil {
				t.Fatal(err)
			}
			owner, err := st.OwnerMonthlyUsage(context.Background(), "acme", month)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s quota 50, 2 × 200 concurrent requests: admitted %d, refused %d, stored %d (owner %d)", c.name, admitted.Load(), refused.Load(), stored, owner)
			if admitted.Load() != c.want || refused.Load() != 400-c.want || stored != c.want || owner != c.want {
				t.Errorf("admitted %d, refused %d, stored %d (owner %d); want %d, %d, %d, %d", admitted.Load(), refused.Load(), stored, owner, c.want, 400-c.want, c.want, c.want)
			}
		})
	}
}

// TestGlobalLeasesGivenBackAtClose: far from its quota, two instances
// admit 2 × 300 concurrent requests from leases, in fewer round trips than
// requests; once both have closed, giving back the units they held,
// Redis's count, the store's and the requests admitted are one number.
func TestGlobalLeasesGivenBackAtClose(t *testing.T) {
	a, b, st, rds := sharedInstances(t, false, 10*time.Second, store.Plan{Owner: "acme", MonthlyQuota: 100_000})
	key, _ := testkit.MintKey(t, st, "acme")
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for _, g := range []*server{a, b} {
		for range 300 {
			wg.Go(func() {
				if w := g.do("GET", "/", "", key); w.Code == 200 {
					admitted.Add(1)
				} else {
					t.Errorf("status %d %s", w.Code, w.Body)
				}
			})
		}
	}
	wg.Wait()
	trips := a.global.RoundTrips() + b.global.RoundTrips()
	month := store.MonthOf(time.Now())
	count := func() int64 {
		keys := rds.Client().Keys(context.Background(), "*{acme}:quota:owner:"+string(month)).Val()
		if len(keys) != 1 {
			t.Fatalf("owner counts %q, want one", keys)
		}
		n, _ := rds.Client().Get(context.Background(), keys[0]).Int64()
		return n
	}
	held := count()
	closeBoth(t, a, b)
	owner, err := st.OwnerMonthlyUsage(context.Background(), "acme", month)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("600 requests: admitted %d in %d round trips; Redis counted %d with the blocks in hand, %d after Close; stored %d", admitted.Load(), trips, held, count(), owner)
	if admitted.Load() != 600 || count() != 600 || owner != 600 {
		t.Errorf("admitted %d, Redis counts %d after Close, stored %d; want 600 each", admitted.Load(), count(), owner)
	}
	if trips >= 600 {
		t.Errorf("%d round trips for 600 requests, want fewer", trips)
	}
}

// pace sends GET / with key to each Gate rate times a second for d, and
// returns the 200s of each, failing on anything but 200 or 429, and the
// window the requests were answered in: from the first sent to the last
// answered, longer than d on a loaded machine, where a limiter refills for
// that long; during(elapsed) runs after each tick.
func pace(t *testing.T, gates []*server, key string, rate int, d time.Duration, during func(time.Duration)) (ok []int64, window time.Duration) {
	t.Helper()
	oks := make([]atomic.Int64, len(gates))
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	start := time.Now()
	for now := range tick.C {
		if now.Sub(start) >= d {
			break
		}
		for i, g := range gates {
			wg.Go(func() {
				switch w := g.do("GET", "/", "", key); w.Code {
				case 200:
					oks[i].Add(1)
				case 429: // refused by the limits
				default:
					t.Errorf("status %d %s", w.Code, w.Body)
				}
			})
		}
		if during != nil {
			during(now.Sub(start))
		}
	}
	wg.Wait()
	window = time.Since(start)
	for i := range gates {
		ok = append(ok, oks[i].Load())
	}
	return ok, window
}

// TestGlobalRateTwoInstances: a rate of 5 a second with a burst of 5, for
// 10 s at 20 requests a second at each of two instances, admits at most
// 5·10 + 5 (+1 for a boundary) in all: the owner's (a plan) and a key's own.
// Without Redis, each instance has a bucket of its own: up to
// 2 × (5·10 + 5 + 1).
func TestGlobalRateTwoInstances(t *testing.T) {
	for _, c := range []struct {
		name        string
		perInstance bool
		plan        store.Plan
		key         func(*store.Key)
		min, max    int64
	}{
		// The lower bounds leave room for a shared machine's stalls, which
		// skip ticks: they only check that the limit is not refusing all.
		{"owner", false, store.Plan{Owner: "acme", RateLimit: 5, Burst: 5}, func(*store.Key) {}, 40, 56},
		{"key", false, store.Plan{Owner: "acme"}, func(k *store.Key) { k.RateLimit, k.Burst = 5, 5 }, 40, 56},
		{"owner per instance", true, store.Plan{Owner: "acme", RateLimit: 5, Burst: 5}, func(*store.Key) {}, 80, 112},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, b, st, _ := sharedInstances(t, c.perInstance, 2*time.Second, c.plan)
			key, _ := testkit.MintKey(t, st, "acme", c.key)
			// The key read, so that the 10 s are all traffic.
			a.do("GET", "/v1/keys/none", "", key)
			b.do("GET", "/v1/keys/none", "", key)
			ok, _ := pace(t, []*server{a, b}, key, 20, 10*time.Second, nil)
			total := ok[0] + ok[1]
			t.Logf("%s rate 5/s burst 5, 10 s at 20/s at each of 2 instances: admitted %d + %d = %d", c.name, ok[0], ok[1], total)
			if total > c.max || total < c.min {
				t.Errorf("admitted %d in 10 s, want %d to %d", total, c.min, c.max)
			}
		})
	}
}

// admits is the most a bucket of rate a second and burst admits in window,
// with one more for a refill at its boundary.
func admits(rate, burst int, window time.Duration) int64 {
	return int64(float64(rate)*window.Seconds()) + int64(burst) + 1
}

// TestGlobalRedisKilledMidTraffic: with Redis killed under traffic, no
// request fails, each instance logs one WARNING in 3 s and applies its own
// limits; with Redis back, both are global again within 2 s; every
// admitted request is stored once.
func TestGlobalRedisKilledMidTraffic(t *testing.T) {
	// A timeout of 0: the limiter's default, 50 ms.
	a, b, st, rds := sharedInstances(t, false, 0, store.Plan{Owner: "acme", RateLimit: 5, Burst: 5, MonthlyQuota: 1_000_000})
	key, k := testkit.MintKey(t, st, "acme")
	gates := []*server{a, b}
	for _, g := range gates {
		g.do("GET", "/v1/keys/none", "", key)
	}
	total := int64(0)
	global, globalWindow := pace(t, gates, key, 20, 2*time.Second, nil)
	total += global[0] + global[1]
	rds.Kill()
	local, localWindow := pace(t, gates, key, 20, 3*time.Second, nil)
	total += local[0] + local[1]
	t.Logf("2 s global: %d + %d admitted; 3 s with Redis killed: %d + %d", global[0], global[1], local[0], local[1])
	if g, most := global[0]+global[1], admits(5, 5, globalWindow); g > most {
		t.Errorf("2 s global (answered in %v): %d admitted, want at most %d", globalWindow, g, most)
	}
	for i, n := range local {
		// Each instance's own bucket: 5 a second, burst 5, full when Redis
		// went away.
		if most := admits(5, 5, localWindow); n > most || n < 12 {
			t.Errorf("instance %d with Redis down: %d admitted in 3 s (answered in %v), want its own limit: up to %d (and some: 12)", i, n, localWindow, most)
		}
	}
	for i, g := range gates {
		if n := strings.Count(g.logs.String(), "Redis unavailable"); n != 1 {
			t.Errorf("instance %d logged %d WARNINGs of Redis in 3 s, want 1:\n%s", i, n, g.logs)
		}
	}
	rds.Restart()
	var back [2]time.Duration
	restarted := time.Now()
	after, _ := pace(t, gates, key, 20, 3*time.Second, func(elapsed time.Duration) {
		for i, g := range gates {
			if back[i] == 0 && strings.Contains(g.logs.String(), "Redis answers again") {
				back[i] = time.Since(restarted)
			}
		}
	})
	total += after[0] + after[1]
	t.Logf("global again after the restart: instance 0 in %v, instance 1 in %v", back[0].Round(time.Millisecond), back[1].Round(time.Millisecond))
	for i, d := range back {
		if d == 0 || d > 2*time.Second {
			t.Errorf("instance %d global again after %v, want within 2 s", i, d)
		}
	}
	closeBoth(t, a, b)
	stored, err := st.MonthlyUsage(context.Background(), k.ID, store.MonthOf(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if stored != total {
		t.Errorf("stored %d, admitted %d", stored, total)
	}
}

// TestGlobalRoundTrips: far from its limits, a key's requests are admitted
// from leases: 1,000 admitted requests cost at most 10 calls to Redis
// (blocks double with demand: 1, 2, 4, ...), counted by Redis itself
// (INFO commandstats); requests refused before the limits (401, 403), or
// by the instance's own bucket, which holds what Redis admitted, and keys
// with no limit at all, cost none; a key near its limit (a burst of 1) is
// asked per request, one call per admitted request.
func TestGlobalRoundTrips(t *testing.T) {
	rds := redistest.Start(t)
	st := memstore.New()
	setPlan(t, st, store.Plan{Owner: "acme", RateLimit: 1e6, Burst: 1e6, MonthlyQuota: 1e12})
	s := newServer(t, st, onRedis(rds, 2*time.Second))
	limited, _ := s.mint(t, "acme", func(k *store.Key) { k.RateLimit, k.Burst, k.MonthlyQuota = 1e6, 1e6, 1e12 })
	free, _ := s.mint(t, "free")
	setPlan(t, st, store.Plan{Owner: "slow", RateLimit: 0.001, Burst: 1})
	slow, _ := s.mint(t, "slow")
	setPlan(t, st, store.Plan{Owner: "slow2", RateLimit: 0.001, Burst: 1})
	slow2, _ := s.mint(t, "slow2")
	unknown, _ := testkit.MintKey(t, memstore.New(), "acme")
	c := rds.Client()
	calls := func() int64 {
		info := c.Info(context.Background(), "commandstats").Val()
		var n int64
		for _, line := range strings.Split(info, "\n") {
			if strings.HasPrefix(line, "cmdstat_eval") {
				_, rest, _ := strings.Cut(line, "calls=")
				calls, _, _ := strings.Cut(rest, ",")
				var k int64
				fmt.Sscan(calls, &k)
				n += k
			}
		}
		return n
	}
	before := calls()
	for range 1000 {
		if w := s.do("GET", "/", "", limited); w.Code != 200 {
			t.Fatalf("GET / = %d", w.Code)
		}
	}
	// The first call on a server is two: EVALSHA, then EVAL.
	if n := calls() - before; n > 11 {
		t.Errorf("1,000 admitted requests far from their limits made %d script calls, want at most 10 (and 1 to load the script)", n)
	} else {
		t.Logf("1,000 admitted requests: %d script calls", n)
	}
	before = calls()
	s.do("GET", "/", "", unknown)                     // 401
	s.do("GET", "/", "")                              // 401
	s.do("POST", "/v1/keys", `{"name":"x"}`, limited) // 403: no keys:manage
	s.do("GET", "/", "", free)                        // no limit
	if n := calls() - before; n != 0 {
		t.Errorf("401, 403 and an unlimited key made %d script calls, want none", n)
	}
	if w := s.do("GET", "/", "", slow2); w.Code != 200 { // loads the per-request script
		t.Fatalf("GET / = %d", w.Code)
	}
	before = calls()
	for i := range 4 {
		if w := s.do("GET", "/", "", slow); w.Code != map[bool]int{true: 200, false: 429}[i == 0] {
			t.Errorf("request %d of a burst of 1: %d", i+1, w.Code)
		}
	}
	if n := calls() - before; n != 1 {
		t.Errorf("1 admitted and 3 refused by the bucket made %d script calls, want 1", n)
	}
}

// BenchmarkGlobalLimits is one admitted GET / through the whole Gate (key
// check, scope, rate limits and quotas of key and owner, meter) with the
// per-instance limits and with Redis on loopback, one after the other in one
// run: far from the limits, so with Redis the requests are admitted from
// leases. Besides ns/op it reports each mode's p50 and p99 latency per
// request, and with Redis the round trips per 1,000 admitted requests
// (BENCHMARKS.md).
func BenchmarkGlobalLimits(b *testing.B) {
	for _, mode := range []string{"instance", "redis"} {
		b.Run("limits="+mode, func(b *testing.B) {
			cfg := testConfig(flushByHand)
			var rds *redistest.Server
			if mode == "redis" {
				// A deadline no stall of a shared machine reaches: no
				// request measured falls back (checked below).
				rds = redistest.Start(b)
				cfg.RedisURL, cfg.RedisTimeout = rds.URL(), 10*time.Second
			}
			st := memstore.New()
			setPlan(b, st, store.Plan{Owner: "acme", RateLimit: 1e6, Burst: 1e6, MonthlyQuota: 1e12})
			s := newBenchServer(b, cfg, &testkit.FaultyStore{Store: st})
			key, _ := testkit.MintKey(b, st, "acme", func(k *store.Key) { k.RateLimit, k.Burst, k.MonthlyQuota = 1e6, 1e6, 1e12 })
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-API-Key", key)
			w := testkit.NewPerfWriter()
			s.ServeHTTP(w, r) // warm the cache, load the script
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
			var trips int64
			if s.global != nil {
				trips = s.global.RoundTrips()
			}
			took := make([]time.Duration, 0, 1<<20)
			b.ReportAllocs()
			for b.Loop() {
				w.Reset()
				start := time.Now()
				s.ServeHTTP(w, r)
				took = append(took, time.Since(start))
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
			}
			if rds != nil {
				trips = s.global.RoundTrips() - trips
				month := store.MonthOf(time.Now())
				n, _ := rds.Client().Get(context.Background(), "keygate:/(default)/api_keys:{acme}:quota:owner:"+string(month)).Int()
				if n < len(took)+1 {
					b.Errorf("Redis counted %d requests of %d: the others fell back to the per-instance limits", n, len(took)+1)
				}
				b.ReportMetric(float64(trips)*1000/float64(len(took)), "trips/1000")
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// TestGlobalRedisHangs: a Redis that accepts connections and never answers
// costs the first requests one deadline each and the next nothing; every
// request is answered by the per-instance limits (5 of 20 at a burst of 5),
// none with a 5xx, and one WARNING is logged.
func TestGlobalRedisHangs(t *testing.T) {
	addr := testkit.Mute(t)
	st := memstore.New()
	setPlan(t, st, store.Plan{Owner: "acme", RateLimit: 0.01, Burst: 5, MonthlyQuota: 1000})
	// A timeout of 300 ms: the first few requests wait one each (about
	// 1 s), all 20 would wait 6 s; the bound, half that, leaves a loaded
	// machine 2 s.
	const timeout = 300 * time.Millisecond
	s := newServer(t, st, func(c *Config) { c.RedisURL = "redis://" + addr; c.RedisTimeout = timeout })
	key, _ := s.mint(t, "acme")
	start := time.Now()
	codes := map[int]int{}
	for range 20 {
		codes[s.do("GET", "/", "", key).Code]++
	}
	took := time.Since(start)
	if codes[200] != 5 || codes[429] != 15 {
		t.Errorf("answers %v, want 5 200s and 15 429s: the per-instance bucket", codes)
	}
	if took > 10*timeout {
		t.Errorf("20 requests took %v with Redis hanging", took)
	}
	if n := strings.Count(s.logs.String(), "Redis unavailable"); n != 1 {
		t.Errorf("%d WARNINGs of Redis, want 1:\n%s", n, s.logs)
	}
	t.Logf("20 requests with Redis hanging: %v, answers %v", took.Round(time.Millisecond), codes)
}

// TestGlobalFallbackSpendsWhatRedisAdmitted: floods of 300 concurrent
// connections at one instance admit exactly its own bound, its burst of 30,
// whether Redis answers under the load (the default 50 ms deadline: calls
// past it fall back, on a loaded machine all of them) or flips from
// answering (a 1 s deadline, which a loaded machine meets) to hanging
// (CLIENT PAUSE: every call times out and the limiter stops asking) and
// back (a probe resumes it): every request Redis admitted also took from
// the instance's bucket, which a fallback then spends. (Before, the 20
// admitted on Redis left a fallback the bucket's whole 30, and Redis its
// 10: 51 to 60 in all.) The Gate's clock stands still but for the probe's
// wait, and the rate is 0.001/s, so the bound has no refill in it and no
// timing margin.
func TestGlobalFallbackSpendsWhatRedisAdmitted(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout time.Duration // 0: the default, 50 ms
		waves   []int
		paused  int // the wave that finds Redis paused; -1: none
	}{
		{"answering under load", 0, []int{300, 300, 300}, -1},
		{"flipping", time.Second, []int{20, 300, 300}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			rds := redistest.Start(t)
			st := memstore.New()
			setPlan(t, st, store.Plan{Owner: "acme", RateLimit: 0.001, Burst: 30})
			s := newServer(t, st, onRedis(rds, c.timeout))
			key, _ := s.mint(t, "acme")
			srv := httptest.NewServer(s)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 300}}
			rc := rds.Client()
			var admitted int64
			var waves []int64
			for i, n := range c.waves {
				if i == c.paused {
					// Every call now hangs to its deadline, until the pause
					// ends or the limiter stops asking.
					if err := rc.Do(context.Background(), "CLIENT", "PAUSE", 3000, "ALL").Err(); err != nil {
						t.Fatal(err)
					}
				}
				ok, _ := testkit.Burst(t, client, []string{srv.URL}, key, n)
				admitted += ok
				waves = append(waves, ok)
				if i == c.paused {
					rc.Ping(context.Background()) // answered when the pause is over
					s.clock.Advance(time.Second)  // the limiter's next probe is due
				}
			}
			fallbacks := strings.Count(s.logs.String(), "Redis unavailable")
			t.Logf("waves of %v: admitted %v = %d; WARNINGs of Redis: %d", c.waves, waves, admitted, fallbacks)
			if admitted != 30 {
				t.Errorf("admitted %d, want the instance's bound: its burst, 30", admitted)
			}
			if c.paused < 0 {
				return
			}
			if fallbacks == 0 {
				t.Error("no request fell back to the per-instance limits while Redis was paused")
			}
			if n, _ := rc.Exists(context.Background(), "keygate:/(default)/api_keys:{acme}:rate:owner").Result(); n != 1 {
				t.Error("Redis admitted nothing: the test did not test a fallback after Redis")
			}
		})
	}
}

// TestGlobalQuotaSeededFromStore: a Redis that lost its counts (FLUSHALL,
// a replaced server) is seeded from the store's month total, which new
// instances read with the key: an owner that used 6 of 10 through one
// instance gets 4 more through two others together, not 4 each (their own
// checks) or 10 (Redis from zero).
func TestGlobalQuotaSeededFromStore(t *testing.T) {
	rds := redistest.Start(t)
	st := memstore.New()
	setPlan(t, st, store.Plan{Owner: "acme", MonthlyQuota: 10})
	a := newServer(t, st, flushByHand, onRedis(rds, 2*time.Second))
	key, _ := a.mint(t, "acme")
	for range 6 {
		if w := a.do("GET", "/", "", key); w.Code != 200 {
			t.Fatalf("GET / = %d", w.Code)
		}
	}
	if err := a.meter.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rds.Client().FlushAll(context.Background())
	b := newServer(t, st, flushByHand, onRedis(rds, 2*time.Second))
	c := newServer(t, st, flushByHand, onRedis(rds, 2*time.Second))
	admitted := 0
	for range 10 {
		for _, g := range []*server{b, c} {
			if w := g.do("GET", "/", "", key); w.Code == 200 {
				admitted++
			}
		}
	}
	if admitted != 4 {
		t.Errorf("after Redis lost its counts, two new instances admitted %d, want 4 (10 less the 6 the store holds)", admitted)
	}
}

// TestGlobalQuotaNewMonth: the counts are the month's; a new UTC month
// starts from zero, on Redis as in the store.
func TestGlobalQuotaNewMonth(t *testing.T) {
	rds := redistest.Start(t)
	st := memstore.New()
	setPlan(t, st, store.Plan{Owner: "acme", MonthlyQuota: 3})
	s := newServer(t, st, flushByHand, onRedis(rds, 2*time.Second))
	key, _ := s.mint(t, "acme")
	count := func() (n int) {
		for range 5 {
			if s.do("GET", "/", "", key).Code == 200 {
				n++
			}
		}
		return n
	}
	if n := count(); n != 3 {
		t.Fatalf("admitted %d this month, want 3", n)
	}
	s.clock.Advance(keyrules.NextMonth(s.clock.Now()).Sub(s.clock.Now()))
	if n := count(); n != 3 {
		t.Errorf("admitted %d in the next month, want 3", n)
	}
	if keys := rds.Client().Keys(context.Background(), "*quota:owner:????-??").Val(); len(keys) != 2 {
		t.Errorf("owner counts on Redis %q, want one per month", keys)
	}
}

// TestGlobalAnswersAsPerInstance: on one instance, the limits on Redis
// answer as the per-instance ones do: the same statuses, RateLimit headers,
// Retry-After and problem bodies, for a key's own rate inside its owner's
// and for the owner's quota.
func TestGlobalAnswersAsPerInstance(t *testing.T) {
	rds := redistest.Start(t)
	type answer struct {
		code                           int
		limit, remaining, reset, retry string
		problem, whose                 string
	}
	run := func(plan store.Plan, own func(*store.Key), change ...func(*Config)) []answer {
		st := memstore.New()
		setPlan(t, st, plan)
		s := buildServer(t, &testkit.FaultyStore{Store: st}, testConfig(append(change, flushByHand)...), nil)
		key, _ := testkit.MintKey(t, st, "acme", own)
		other, _ := testkit.MintKey(t, st, "acme")
		var got []answer
		for _, k := range []string{key, key, key, key, other, other, other} {
			w := s.do("GET", "/", "", k)
			a := answer{code: w.Code, limit: w.Header().Get("RateLimit-Limit"), remaining: w.Header().Get("RateLimit-Remaining"),
				reset: w.Header().Get("RateLimit-Reset"), retry: w.Header().Get("Retry-After")}
			if w.Code != 200 {
				p := testkit.Problem(t, w)
				a.problem, a.whose = p.Code, p.Limit
				if p.Code == "quota_exceeded" {
					a.retry = "(to the month's end)"
				}
			}
			got = append(got, a)
		}
		return got
	}
	for _, c := range []struct {
		name string
		plan store.Plan
		own  func(*store.Key)
	}{
		{"rates", store.Plan{Owner: "acme", RateLimit: 1, Burst: 4}, func(k *store.Key) { k.RateLimit, k.Burst = 1, 3 }},
		{"quotas", store.Plan{Owner: "acme", MonthlyQuota: 5}, func(k *store.Key) { k.MonthlyQuota = 3 }},
	} {
		local, global := run(c.plan, c.own), run(c.plan, c.own, onRedis(rds, 2*time.Second))
		for i := range local {
			if local[i] != global[i] {
				t.Errorf("%s, request %d: per instance %+v, on Redis %+v", c.name, i+1, local[i], global[i])
			}
		}
		t.Logf("%s: %+v", c.name, global)
	}
}
