package apikey

// Benchmarks of issue 6: the cost of the Gate on the hot path. See
// BENCHMARKS.md for the figures and bench/ for the scripts that produce them.
// The function's handlers bare and behind the Gate (GET /, the bingo check)
// are compared in the root package, package keygate.
//
// Every benchmark runs with -benchtime 1x (CI's smoke run) and without the
// Firestore emulator.

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/testkit"
)

// newBenchServer is the fixture's server (a Gate on fs, in front of
// routes) for benchmarks: its logs are formatted as in production but
// discarded, since a benchmark that refuses millions of requests would
// otherwise measure, and hold, a log buffer. It is closed when the
// benchmark ends.
func newBenchServer(b *testing.B, cfg Config, fs *testkit.FaultyStore, opts ...Option) *server {
	g := New(cfg, fs, append(opts, WithLogger(logging.NewLogger(io.Discard)))...)
	b.Cleanup(func() { g.Close(context.Background()) })
	return &server{Gate: g, Handler: routes(g), store: fs}
}

// perfEnv is what the hot-path benchmarks share: the default configuration
// (with the function's default scopes), the real clock, a counting memory
// store holding one valid key, and logs formatted as in production but
// discarded.
type perfEnv struct {
	*server
	key string
}

func newPerfEnv(b *testing.B) *perfEnv {
	b.Helper()
	fs := &testkit.FaultyStore{Store: memstore.New()}
	key, _ := testkit.MintKey(b, fs, "acme")
	return &perfEnv{server: newBenchServer(b, testConfig(), fs), key: key}
}

// BenchmarkAuthMiddleware is the Gate's key check alone (Authenticate: no
// scope, limit or count) on a cache hit, in front of a handler that does
// nothing: the whole cost of a cache hit.
func BenchmarkAuthMiddleware(b *testing.B) {
	e := newPerfEnv(b)
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := e.Authenticate(noop)
	b.Run("serial", func(b *testing.B) { testkit.Serve(b, h, testkit.GetRequest(e.key), http.StatusNoContent) })
	b.Run("parallel", func(b *testing.B) { testkit.ServeParallel(b, h, testkit.GetRequest(e.key), http.StatusNoContent) })
}

// BenchmarkCacheLookupHit is keyCache.Lookup of a cached key.
func BenchmarkCacheLookupHit(b *testing.B) {
	e := newPerfEnv(b)
	d := keyformat.DigestOf(e.key)
	ctx := context.Background()
	if _, err := e.keys.Lookup(ctx, d); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.keys.Lookup(ctx, d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.keys.Lookup(ctx, d); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	if n := e.store.Gets.Load(); n != 1 {
		b.Fatalf("%d store calls, want 1", n)
	}
}

// BenchmarkParseKey is the key-format check of a valid key and of malformed
// ones; none may allocate. It is a step of the Gate's key check, measured
// here, in the same run as BenchmarkCacheLookupHit, for its parallel
// calibration.
func BenchmarkParseKey(b *testing.B) {
	key, err := keyformat.New("kg")
	if err != nil {
		b.Fatal(err)
	}
	badSum := key[:len(key)-1] + string(otherBase62(key[len(key)-1]))
	for _, c := range []struct {
		name, key string
		ok        bool
	}{
		{"valid", key, true},
		{"bad_checksum", badSum, false},
		{"bad_length", key[:len(key)-1], false},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := keyformat.Parse(c.key, "kg"); (err == nil) != c.ok {
					b.Fatalf("ParseKey = %v", err)
				}
			}
		})
	}
	// A valid key from GOMAXPROCS goroutines: Parse shares nothing, so
	// serial/parallel is the speedup this machine gives parallel code, to
	// compare BenchmarkCacheLookupHit's with (its lock is shared).
	b.Run("valid_parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := keyformat.Parse(key, "kg"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkKeyDigest is the SHA-256 of a key, the cache's lookup key.
func BenchmarkKeyDigest(b *testing.B) {
	key, err := keyformat.New("kg")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var d keyformat.Digest
	for b.Loop() {
		d = keyformat.DigestOf(key)
	}
	if d != keyformat.DigestOf(key) {
		b.Fatal("digest changed")
	}
}

// BenchmarkClock is one time.Now: the unit of the clock reads on the hot
// path (the cache's, the LRU's, the Gate's, the meter's).
func BenchmarkClock(b *testing.B) {
	var t time.Time
	for b.Loop() {
		t = time.Now()
	}
	if t.IsZero() {
		b.Fatal("no time")
	}
}

// otherBase62 returns a base62 digit other than c.
func otherBase62(c byte) byte {
	if c == '0' {
		return '1'
	}
	return '0'
}

// BenchmarkMalformedKey is the refusal of malformed keys through the Gate
// in front of the function's routes: 401 invalid_api_key, a WARNING log
// entry (formatted, then discarded) and no store call, which the benchmark
// asserts and reports as storecalls/op.
func BenchmarkMalformedKey(b *testing.B) {
	e := newPerfEnv(b)
	key := e.key
	for _, c := range []struct{ name, key string }{
		{"bad_checksum", key[:len(key)-1] + string(otherBase62(key[len(key)-1]))},
		{"wrong_prefix", "xx" + key[2:]},
		{"too_long", key + key},
		{"bad_alphabet", key[:10] + "-" + key[11:]},
	} {
		b.Run(c.name, func(b *testing.B) {
			before := e.store.Gets.Load()
			testkit.Serve(b, e, testkit.GetRequest(c.key), http.StatusUnauthorized)
			calls := e.store.Gets.Load() - before
			b.ReportMetric(float64(calls)/float64(b.N+1), "storecalls/op")
			if calls != 0 {
				b.Fatalf("malformed key made %d store calls, want 0", calls)
			}
		})
	}
}
