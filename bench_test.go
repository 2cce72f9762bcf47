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

// perfWriter is an http.ResponseWriter that keeps nothing but the status,
// so that benchmarks measure the handler rather than a recorder. Reset it
// between requests.
type perfWriter struct {
	h    http.Header
	code int
	n    int
}

func newPerfWriter() *perfWriter { return &perfWriter{h: make(http.Header)} }

func (w *perfWriter) Header() http.Header { return w.h }

func (w *perfWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *perfWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func (w *perfWriter) reset() {
	clear(w.h)
	w.code = 0
	w.n = 0
}

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

// getRequest is GET / with the given key.
func getRequest(key string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	return r
}

// serveOnce serves r with h and fails the benchmark unless it answers want.
func serveOnce(b *testing.B, h http.Handler, r *http.Request, want int) {
	b.Helper()
	w := newPerfWriter()
	h.ServeHTTP(w, r)
	if w.code != want {
		b.Fatalf("%s %s answered %d, want %d", r.Method, r.URL.Path, w.code, want)
	}
}

// perfServe serves r with h b.N times, serially.
func perfServe(b *testing.B, h http.Handler, r *http.Request, want int) {
	serveOnce(b, h, r, want) // fills the cache; also checks the answer
	w := newPerfWriter()
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
	}
	if w.code != want {
		b.Fatalf("answered %d, want %d", w.code, want)
	}
}

// perfServeParallel serves r with h from GOMAXPROCS goroutines; each has
// its own copy of r.
func perfServeParallel(b *testing.B, h http.Handler, r *http.Request, want int) {
	serveOnce(b, h, r, want)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := r.Clone(context.Background())
		w := newPerfWriter()
		served := false
		for pb.Next() {
			w.reset()
			h.ServeHTTP(w, r)
			served = true
		}
		if served && w.code != want {
			b.Errorf("answered %d, want %d", w.code, want)
		}
	})
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
		b.Run(v.name, func(b *testing.B) { perfServe(b, v.h, getRequest(e.key), http.StatusOK) })
	}
}

// BenchmarkHelloParallel is BenchmarkHello from GOMAXPROCS goroutines, all
// with the same key: the worst case for the cache's lock.
func BenchmarkHelloParallel(b *testing.B) {
	e := newPerfEnv(b)
	for _, v := range helloVariants(e) {
		b.Run(v.name, func(b *testing.B) { perfServeParallel(b, v.h, getRequest(e.key), http.StatusOK) })
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
			serveOnce(b, v.h, r, http.StatusOK)
			w := newPerfWriter()
			b.ReportAllocs()
			for b.Loop() {
				rewind()
				w.reset()
				v.h.ServeHTTP(w, r)
			}
			if w.code != http.StatusOK {
				b.Fatalf("answered %d", w.code)
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
			serveOnce(b, v.h, first, http.StatusOK)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r, rewind := bingoRequestFor(e.key)
				w := newPerfWriter()
				served := false
				for pb.Next() {
					rewind()
					w.reset()
					v.h.ServeHTTP(w, r)
					served = true
				}
				if served && w.code != http.StatusOK {
					b.Errorf("answered %d", w.code)
				}
			})
		})
	}
}
