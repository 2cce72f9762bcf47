package apikey

// Store calls per request (issue 6, item 3): key reads (Get), counted by
// testkit.FaultyStore. Each benchmark iteration plays a whole traffic
// scenario through a fresh Gate in front of the function's routes (the
// fixture's routes) on a fake clock, asserts the bound, and reports the
// counts:
//
//	storecalls/op   store calls per scenario
//	requests/op     requests per scenario
//	storecalls/req  store calls per request
//
// They run with -benchtime 1x, as CI's smoke run does.

import (
	"fmt"
	"hash/crc32"
	"math/big"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/internal/ratelimit"
	"github.com/keygate/keygate/internal/testkit"
)

// newScenario returns a server on fs and a fake clock, with logs
// discarded, closed when the benchmark ends.
func newScenario(b *testing.B, cfg Config, fs *testkit.FaultyStore) *server {
	clock := testkit.NewFakeClock()
	s := newBenchServer(b, cfg, fs, WithClock(clock.Now))
	s.clock = clock
	return s
}

// serveKey serves GET / with key and returns the status.
func (s *server) serveKey(w *testkit.PerfWriter, r *http.Request, key string) int {
	r.Header.Set("X-API-Key", key)
	w.Reset()
	s.ServeHTTP(w, r)
	return w.Code
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
func roundRobin(b *testing.B, cfg Config, fs *testkit.FaultyStore, keys []string, requests int64, step time.Duration, window time.Duration, bound int64, addrs []string, want ...int) {
	nkeys := len(keys)
	span := time.Duration(requests) * step
	perKey := int64(nkeys) * windows(span, window)
	if bound == 0 || perKey < bound {
		bound = perKey
	}
	b.ReportAllocs()
	for b.Loop() {
		fs.Gets.Store(0)
		s := newScenario(b, cfg, fs)
		w, r := testkit.NewPerfWriter(), testkit.GetRequest("")
		for i := range requests {
			if addrs != nil {
				r.RemoteAddr = addrs[i%int64(len(addrs))]
			}
			if code := s.serveKey(w, r, keys[i%int64(nkeys)]); !slices.Contains(want, code) {
				b.Fatalf("request %d answered %d, want one of %v", i, code, want)
			}
			s.waitRefreshes()
			s.clock.Advance(step)
		}
		calls := fs.Gets.Load()
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
	cfg := testConfig()
	fs := &testkit.FaultyStore{Store: memstore.New()}
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i], _ = testkit.MintKey(b, fs, "acme")
	}
	span := 6 * cfg.CacheTTL
	requests := int64(span / step)
	roundRobin(b, cfg, fs, keys, requests, step, cfg.CacheTTL, 0, nil, http.StatusOK)
}

// perKeyPerWindow is calls per key per window of length w in a span d.
func perKeyPerWindow(calls int64, keys int, d, w time.Duration) float64 {
	return float64(calls) / float64(keys) / (float64(d) / float64(w))
}

// The key format's base62 alphabet, and the body of the largest secret,
// 2^256-1 (see package keyformat, which keeps its own unexported).
const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var maxBody = func() string {
	n := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	out := make([]byte, keyformat.BodyLen)
	mod := new(big.Int)
	for i := range out {
		n.DivMod(n, big.NewInt(62), mod)
		out[len(out)-1-i] = base62Alphabet[mod.Int64()]
	}
	return string(out)
}()

// withChecksum is payload followed by its checksum, as the key format
// writes it: the CRC-32 (IEEE) of payload in base62.
func withChecksum(payload string) string {
	var sum [keyformat.ChecksumLen]byte
	v := crc32.ChecksumIEEE([]byte(payload))
	for i := keyformat.ChecksumLen - 1; i >= 0; i-- {
		sum[i] = base62Alphabet[v%62]
		v /= 62
	}
	return payload + string(sum[:])
}

// malformedKeys returns n distinct malformed keys of many kinds, none of
// which keyformat.Parse accepts: random strings, valid keys with a changed
// character, wrong prefixes, lengths, alphabets and bodies above 2^256-1.
func malformedKeys(tb testing.TB, n int) []string {
	tb.Helper()
	// The largest secret is a valid key: so maxBody and withChecksum are
	// the key format's, and the keys above it are malformed by their body
	// alone.
	if err := keyformat.Parse(withChecksum("kg_"+maxBody), "kg"); err != nil {
		tb.Fatalf("the key of the largest secret: %v", err)
	}
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
			k = withChecksum("kg_" + string(body))
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
	fs := &testkit.FaultyStore{Store: memstore.New()}
	b.ReportAllocs()
	for b.Loop() {
		fs.Gets.Store(0)
		s := newScenario(b, testConfig(), fs)
		w, r := testkit.NewPerfWriter(), testkit.GetRequest("")
		for _, k := range keys {
			if code := s.serveKey(w, r, k); code != http.StatusUnauthorized {
				b.Fatalf("malformed key %q answered %d", k, code)
			}
		}
		calls := fs.Gets.Load()
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
	cfg := testConfig()
	requests := int64(nkeys * rounds)
	span := time.Duration(requests) * step
	lim := ratelimit.DefaultUnknownKeyLimits
	for _, c := range []struct {
		name  string
		addrs []string
		bound float64
	}{
		{"one-address", nil, lim.Burst + lim.Rate*span.Seconds()},
		{"10000-addresses", addrs, lim.InstanceBurst + lim.InstanceRate*span.Seconds()},
	} {
		b.Run(c.name, func(b *testing.B) {
			fs := &testkit.FaultyStore{Store: memstore.New()}
			roundRobin(b, cfg, fs, keys, requests, step, cfg.NegativeTTL, int64(c.bound), c.addrs,
				http.StatusUnauthorized, http.StatusTooManyRequests)
		})
	}
}

// BenchmarkStoreCallsColdKey is 200 concurrent first requests for one key
// that is not cached: one store call, shared by all (one read in flight per key, internal/swr). The
// store holds every call until all 200 requests have started.
func BenchmarkStoreCallsColdKey(b *testing.B) {
	const n = 200
	b.ReportAllocs()
	for b.Loop() {
		fs := &testkit.FaultyStore{Store: memstore.New(), Release: make(chan struct{})}
		key, _ := testkit.MintKey(b, fs.Store, "acme")
		s := newScenario(b, testConfig(), fs)
		var started, done sync.WaitGroup
		codes := make(chan int, n)
		started.Add(n)
		for range n {
			done.Go(func() {
				w, r := testkit.NewPerfWriter(), testkit.GetRequest(key)
				started.Done()
				s.ServeHTTP(w, r)
				codes <- w.Code
			})
		}
		started.Wait()
		time.Sleep(20 * time.Millisecond) // let them reach the store call
		close(fs.Release)
		done.Wait()
		close(codes)
		for c := range codes {
			if c != http.StatusOK {
				b.Fatalf("a cold request answered %d", c)
			}
		}
		calls := fs.Gets.Load()
		if calls != 1 {
			b.Fatalf("%d concurrent first requests for one key made %d store calls, want 1", n, calls)
		}
		reportCalls(b, calls, n)
	}
}
