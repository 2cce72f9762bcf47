package keygate

// Store calls per request (issue 6, item 3), counted by testStore, the
// counting KeyStore wrapper. Each benchmark iteration plays a whole traffic
// scenario through the deployed handler (NewServer) on a fresh cache and a
// fake clock, asserts the bound, and reports the counts:
//
//	storecalls/op   store calls per scenario
//	requests/op     requests per scenario
//	storecalls/req  store calls per request
//
// They run with -benchtime 1x, as CI's smoke run does.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// scenario is a server on a counting memory store and a fake clock.
type scenario struct {
	cfg   Config
	store *testStore
	clock *fakeClock
	srv   *Server
}

// newScenario returns a scenario, closed when the benchmark ends.
func newScenario(b *testing.B, cfg Config, store *testStore) *scenario {
	clock := newFakeClock()
	srv := NewServer(cfg, store, Options{Now: clock.Now, Logger: logging.NewLogger(io.Discard)})
	b.Cleanup(func() { srv.Close(context.Background()) })
	return &scenario{cfg: cfg, store: store, clock: clock, srv: srv}
}

// do serves GET / with key and returns the status.
func (s *scenario) do(w *perfWriter, r *http.Request, key string) int {
	r.Header.Set("X-API-Key", key)
	w.reset()
	s.srv.ServeHTTP(w, r)
	return w.code
}

// reportCalls reports a scenario's counts.
func reportCalls(b *testing.B, calls, requests int64) {
	b.ReportMetric(float64(calls), "storecalls/op")
	b.ReportMetric(float64(requests), "requests/op")
	b.ReportMetric(float64(calls)/float64(requests), "storecalls/req")
}

// roundRobin sends requests round-robin over keys, the fake clock advancing
// step a request, checks that each is answered one of want, and that the
// store calls stay within one per key per window, and within bound when it
// is not 0; it reports them. Each request's background refresh, if any, ends
// before the clock moves on, as a read of a few milliseconds does on a clock
// that moves by step. With addrs, request i comes from client address
// addrs[i%len(addrs)].
func roundRobin(b *testing.B, cfg Config, store *testStore, keys []string, requests int64, step time.Duration, window time.Duration, bound int64, addrs []string, want ...int) {
	nkeys := len(keys)
	span := time.Duration(requests) * step
	perKey := int64(nkeys) * windows(span, window)
	if bound == 0 || perKey < bound {
		bound = perKey
	}
	b.ReportAllocs()
	for b.Loop() {
		store.gets.Store(0)
		s := newScenario(b, cfg, store)
		w, r := newPerfWriter(), getRequest("")
		for i := range requests {
			if addrs != nil {
				r.RemoteAddr = addrs[i%int64(len(addrs))]
			}
			if code := s.do(w, r, keys[i%int64(nkeys)]); !slices.Contains(want, code) {
				b.Fatalf("request %d answered %d, want one of %v", i, code, want)
			}
			s.srv.keys.bg.Wait()
			s.clock.Advance(step)
		}
		calls := store.gets.Load()
		if calls > bound {
			b.Fatalf("%d requests on %d keys over %v made %d store calls, want at most %d",
				requests, nkeys, span, calls, bound)
		}
		reportCalls(b, calls, requests)
		b.ReportMetric(perKeyPerWindow(calls, nkeys, span, window), "storecalls/key/ttl")
	}
}

// windows is how many windows of length w a span of length d touches at
// most: the bound on store calls per key.
func windows(d, w time.Duration) int64 { return int64(d/w) + 1 }

// BenchmarkStoreCallsSteady is steady traffic on 100 valid keys: requests
// round-robin over the keys, one every 10 ms of fake time, for 6 cache TTLs
// (6 minutes, 36,000 requests). Bound: at most one store call per key per
// KEY_CACHE_TTL window.
func BenchmarkStoreCallsSteady(b *testing.B) {
	const (
		nkeys = 100
		step  = 10 * time.Millisecond
	)
	cfg := DefaultConfig()
	store := &testStore{KeyStore: memstore.New()}
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i], _ = mintTestKey(b, store, "acme")
	}
	span := 6 * cfg.CacheTTL
	requests := int64(span / step)
	roundRobin(b, cfg, store, keys, requests, step, cfg.CacheTTL, 0, nil, http.StatusOK)
}

// perKeyPerWindow is calls per key per window of length w in a span d.
func perKeyPerWindow(calls int64, keys int, d, w time.Duration) float64 {
	return float64(calls) / float64(keys) / (float64(d) / float64(w))
}

// malformedKeys returns n distinct malformed keys of many kinds, none of
// which ParseKey accepts: random strings, valid keys with a changed
// character, wrong prefixes, lengths, alphabets and bodies above 2^256-1.
func malformedKeys(tb testing.TB, n int) []string {
	tb.Helper()
	rng := rand.New(rand.NewPCG(6, 6))
	const printable = " !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~"
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = printable[rng.IntN(len(printable))]
		}
		return string(b)
	}
	seen := make(map[string]bool, n)
	keys := make([]string, 0, n)
	for len(keys) < n {
		valid, err := keyformat.New("kg")
		if err != nil {
			tb.Fatal(err)
		}
		var k string
		switch rng.IntN(7) {
		case 0: // random printable junk of any length up to twice the limit
			k = random(1 + rng.IntN(2*keyformat.MaxLen))
		case 1: // one character changed: the checksum catches it
			i := 3 + rng.IntN(len(valid)-3)
			c := base62Alphabet[rng.IntN(len(base62Alphabet))]
			k = valid[:i] + string(c) + valid[i+1:]
		case 2: // another prefix
			k = random(1+rng.IntN(4)) + valid[2:]
		case 3: // one character short or long
			if rng.IntN(2) == 0 {
				k = valid[:len(valid)-1]
			} else {
				k = valid + string(base62Alphabet[rng.IntN(62)])
			}
		case 4: // a character outside base62
			i := 3 + rng.IntN(len(valid)-3)
			k = valid[:i] + string("-_+/=.~"[rng.IntN(7)]) + valid[i+1:]
		case 5: // body above 2^256-1 with a correct checksum
			body := []byte(maxBody)
			body[rng.IntN(3)] = 'z'
			payload := "kg_" + string(body)
			var sum [checksumLen]byte
			v := checksumOf(payload)
			for i := checksumLen - 1; i >= 0; i-- {
				sum[i] = base62Alphabet[v%62]
				v /= 62
			}
			k = payload + string(sum[:])
		case 6: // longer than any key
			k = valid + random(keyformat.MaxLen)
		}
		if k == "" || seen[k] || keyformat.Parse(k, "kg") == nil {
			continue
		}
		seen[k] = true
		keys = append(keys, k)
	}
	return keys
}

// BenchmarkStoreCallsMalformed is 10,000 random malformed keys, each sent
// once: none may cost a store call.
func BenchmarkStoreCallsMalformed(b *testing.B) {
	keys := malformedKeys(b, 10_000)
	store := &testStore{KeyStore: memstore.New()}
	b.ReportAllocs()
	for b.Loop() {
		store.gets.Store(0)
		s := newScenario(b, DefaultConfig(), store)
		w, r := newPerfWriter(), getRequest("")
		for _, k := range keys {
			if code := s.do(w, r, k); code != http.StatusUnauthorized {
				b.Fatalf("malformed key %q answered %d", k, code)
			}
		}
		calls := store.gets.Load()
		if calls != 0 {
			b.Fatalf("%d malformed keys made %d store calls, want 0", len(keys), calls)
		}
		reportCalls(b, calls, int64(len(keys)))
	}
}

// BenchmarkStoreCallsUnknown is 10,000 well-formed keys that are not in the
// store, each sent 6 times round-robin while the fake clock advances 1 ms a
// request: 60,000 requests over 60 s, two KEY_NEGATIVE_TTL windows. From
// one client address, the forged-key budget allows 10 + 1/s reads; from
// 10,000 addresses, the instance's 100 + 50/s. Whatever is not read is
// answered 429 too_many_unknown_keys.
func BenchmarkStoreCallsUnknown(b *testing.B) {
	const (
		nkeys  = 10_000
		rounds = 6
		step   = time.Millisecond
	)
	keys := make([]string, nkeys)
	addrs := make([]string, nkeys)
	for i := range keys {
		var err error
		if keys[i], err = keyformat.New("kg"); err != nil {
			b.Fatal(err)
		}
		addrs[i] = fmt.Sprintf("10.%d.%d.1:1234", i/256, i%256)
	}
	cfg := DefaultConfig()
	requests := int64(nkeys * rounds)
	span := time.Duration(requests) * step
	lim := defaultUnknownKeyLimits
	for _, c := range []struct {
		name  string
		addrs []string
		bound float64
	}{
		{"one-address", nil, lim.burst + lim.rate*span.Seconds()},
		{"10000-addresses", addrs, lim.instanceBurst + lim.instanceRate*span.Seconds()},
	} {
		b.Run(c.name, func(b *testing.B) {
			store := &testStore{KeyStore: memstore.New()}
			roundRobin(b, cfg, store, keys, requests, step, cfg.NegativeTTL, int64(c.bound), c.addrs,
				http.StatusUnauthorized, http.StatusTooManyRequests)
		})
	}
}

// BenchmarkStoreCallsColdKey is 200 concurrent first requests for one key
// that is not cached: one store call, shared by all (singleflight). The
// store holds every call until all 200 requests have started.
func BenchmarkStoreCallsColdKey(b *testing.B) {
	const n = 200
	b.ReportAllocs()
	for b.Loop() {
		store := &testStore{KeyStore: memstore.New(), release: make(chan struct{})}
		key, _ := mintTestKey(b, store.KeyStore, "acme")
		s := newScenario(b, DefaultConfig(), store)
		var started, done sync.WaitGroup
		codes := make(chan int, n)
		started.Add(n)
		for range n {
			done.Go(func() {
				w, r := newPerfWriter(), getRequest(key)
				started.Done()
				s.srv.ServeHTTP(w, r)
				codes <- w.code
			})
		}
		started.Wait()
		time.Sleep(20 * time.Millisecond) // let them reach the store call
		close(store.release)
		done.Wait()
		close(codes)
		for c := range codes {
			if c != http.StatusOK {
				b.Fatalf("a cold request answered %d", c)
			}
		}
		calls := store.gets.Load()
		if calls != 1 {
			b.Fatalf("%d concurrent first requests for one key made %d store calls, want 1", n, calls)
		}
		reportCalls(b, calls, n)
	}
}
