package keygate

// Benchmarks of issue 6 that need the function's own handlers: GET / and
// the bingo check, bare and behind the Gate. The Gate's own hot path (the
// key check alone, the cache, key parsing, malformed keys, store calls,
// memory per key) is benchmarked in package apikey. See BENCHMARKS.md for
// the figures and bench/ for the scripts that produce them.
//
// Every benchmark runs with -benchtime 1x (CI's smoke run) and without the
// Firestore emulator.

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/bingo"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/testkit"
)

// perfBody is a request body that can be rewound without allocating.
type perfBody struct{ bytes.Reader }

func (*perfBody) Close() error { return nil }

// functionConfig is the function's configuration with no variable set: the
// defaults, with the function's DefaultScopes.
func functionConfig(tb testing.TB) apikey.Config {
	tb.Helper()
	cfg, err := LoadConfig(func(string) string { return "" })
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// perfEnv is what the benchmarks share: a Gate with the function's
// configuration and the real clock on a memory store holding one valid
// key (stored without scopes: it has the function's DefaultScopes), logs
// formatted as in production but discarded. The Gate is closed when the
// benchmark ends.
type perfEnv struct {
	gate *apikey.Gate
	key  string
}

func newPerfEnv(b *testing.B) *perfEnv {
	b.Helper()
	s := memstore.New()
	key, _ := testkit.MintKey(b, s, "acme")
	g := apikey.New(functionConfig(b), s, apikey.WithLogger(logging.NewLogger(io.Discard)))
	b.Cleanup(func() { g.Close(context.Background()) })
	return &perfEnv{gate: g, key: key}
}

// The handler variants of GET / compared by BenchmarkHello: the bare
// handler, the same handler behind the Gate's key check alone
// (Gate.Authenticate: no scope, limit or count), and the function's
// Handler (key check, then router, then Protect: scope, limits, metering,
// then the handler). Requests carry a valid key that is in the cache: the
// hot path.
func helloVariants(e *perfEnv) []struct {
	name string
	h    http.Handler
} {
	return []struct {
		name string
		h    http.Handler
	}{
		{"handler=bare", http.HandlerFunc(hello)},
		{"handler=auth", e.gate.Authenticate(http.HandlerFunc(hello))},
		{"handler=server", Handler(e.gate)},
	}
}

// BenchmarkHello is GET / on a cache hit, against the bare handler.
// middleware cost = auth - bare.
func BenchmarkHello(b *testing.B) {
	e := newPerfEnv(b)
	for _, v := range helloVariants(e) {
		b.Run(v.name, func(b *testing.B) { testkit.Serve(b, v.h, testkit.GetRequest(e.key), http.StatusOK) })
	}
}

// BenchmarkHelloParallel is BenchmarkHello from GOMAXPROCS goroutines, all
// with the same key: the worst case for the cache's lock.
func BenchmarkHelloParallel(b *testing.B) {
	e := newPerfEnv(b)
	for _, v := range helloVariants(e) {
		b.Run(v.name, func(b *testing.B) { testkit.ServeParallel(b, v.h, testkit.GetRequest(e.key), http.StatusOK) })
	}
}

// perfBingoBody is a valid bingo check with a win: the README's example.
const perfBingoBody = `{"card":[[7,19,38,52,71],[3,24,41,49,66],[12,17,0,57,62],[1,28,33,60,74],[14,22,44,47,69]],"called":[12,57,17,62,38,41,33,44,5]}`

// bingoRequestFor is POST /v1/bingo/check with the bingo body and key; its
// body rewinds with rewind.
func bingoRequestFor(key string) (r *http.Request, rewind func()) {
	body := &perfBody{}
	body.Reset([]byte(perfBingoBody))
	r = httptest.NewRequest(http.MethodPost, "/v1/bingo/check", nil)
	r.Body = body
	r.ContentLength = int64(len(perfBingoBody))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-API-Key", key)
	return r, func() { body.Reset([]byte(perfBingoBody)) }
}

// namedHandler is a handler under benchmark.
type namedHandler struct {
	name string
	h    http.Handler
}

// bingoHandlers are the bingo check bare, and behind Gate.Protect with its
// scope, bingo:check: the key check, the scope check, the rate limits and
// the meter's count. (There is no longer a scope check without limits and
// metering: before the Gate, handler=auth was the key check and the scope
// check alone.)
func bingoHandlers(e *perfEnv) []namedHandler {
	return []namedHandler{
		{"handler=bare", http.HandlerFunc(bingo.Check)},
		{"handler=auth", e.gate.Protect(ScopeBingoCheck, http.HandlerFunc(bingo.Check))},
	}
}

// BenchmarkAuthBingo is POST /v1/bingo/check: the bare handler, and the same
// handler behind Gate.Protect with bingo:check (a default scope), on a cache
// hit.
func BenchmarkAuthBingo(b *testing.B) {
	e := newPerfEnv(b)
	for _, v := range bingoHandlers(e) {
		b.Run(v.name, func(b *testing.B) {
			r, rewind := bingoRequestFor(e.key)
			testkit.ServeOnce(b, v.h, r, http.StatusOK)
			w := testkit.NewPerfWriter()
			b.ReportAllocs()
			for b.Loop() {
				rewind()
				w.Reset()
				v.h.ServeHTTP(w, r)
			}
			if w.Code != http.StatusOK {
				b.Fatalf("answered %d", w.Code)
			}
		})
	}
}

// BenchmarkAuthBingoParallel is BenchmarkAuthBingo from GOMAXPROCS
// goroutines.
func BenchmarkAuthBingoParallel(b *testing.B) {
	e := newPerfEnv(b)
	for _, v := range bingoHandlers(e) {
		b.Run(v.name, func(b *testing.B) {
			first, _ := bingoRequestFor(e.key)
			testkit.ServeOnce(b, v.h, first, http.StatusOK)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r, rewind := bingoRequestFor(e.key)
				w := testkit.NewPerfWriter()
				served := false
				for pb.Next() {
					rewind()
					w.Reset()
					v.h.ServeHTTP(w, r)
					served = true
				}
				if served && w.Code != http.StatusOK {
					b.Errorf("answered %d", w.Code)
				}
			})
		})
	}
}
