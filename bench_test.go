package keygate

// Benchmarks of issue 6: the cost of keygate's auth on the hot path. See
// BENCHMARKS.md for the figures and bench/ for the scripts that produce them.
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
	"time"
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

// perfEnv is what the hot-path benchmarks share: the default configuration,
// the real clock, a counting memory store holding one valid key, and logs
// formatted as in production but discarded.
type perfEnv struct {
	cfg   Config
	store *testStore
	key   string
	keys  *KeyCache
	auth  *Authenticator
}

func newPerfEnv(b *testing.B) *perfEnv {
	b.Helper()
	cfg := DefaultConfig()
	store := &testStore{KeyStore: memstore.New()}
	key, _ := mintTestKey(b, store, "acme")
	log := logging.NewLogger(io.Discard)
	keys := NewKeyCache(cfg, store, time.Now, log)
	return &perfEnv{
		cfg:   cfg,
		store: store,
		key:   key,
		keys:  keys,
		auth:  NewAuthenticator(cfg, keys, time.Now, log),
	}
}

// server returns the deployed handler, NewServer, on the env's store,
// closed when the benchmark ends.
func (e *perfEnv) server(b *testing.B) *Server {
	s := NewServer(e.cfg, e.store, Options{Logger: logging.NewLogger(io.Discard)})
	b.Cleanup(func() { s.Close(context.Background()) })
	return s
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
// handler, the same handler behind the auth middleware, and the deployed
// Server (middleware, then router, then handler). Requests carry a valid key
// that is in the cache: the hot path.
func helloVariants(b *testing.B, e *perfEnv) []struct {
	name string
	h    http.Handler
} {
	return []struct {
		name string
		h    http.Handler
	}{
		{"handler=bare", http.HandlerFunc(handleHello)},
		{"handler=auth", e.auth.Middleware(http.HandlerFunc(handleHello))},
		{"handler=server", e.server(b)},
	}
}

// BenchmarkHello is GET / on a cache hit, against the bare handler.
// middleware cost = auth - bare.
func BenchmarkHello(b *testing.B) {
	e := newPerfEnv(b)
	for _, v := range helloVariants(b, e) {
		b.Run(v.name, func(b *testing.B) { perfServe(b, v.h, getRequest(e.key), http.StatusOK) })
	}
}

// BenchmarkHelloParallel is BenchmarkHello from GOMAXPROCS goroutines, all
// with the same key: the worst case for the cache's lock.
func BenchmarkHelloParallel(b *testing.B) {
	e := newPerfEnv(b)
	for _, v := range helloVariants(b, e) {
		b.Run(v.name, func(b *testing.B) { perfServeParallel(b, v.h, getRequest(e.key), http.StatusOK) })
	}
}

// BenchmarkAuthMiddleware is the auth middleware alone on a cache hit, in front
// of a handler that does nothing: the whole cost of a cache hit.
func BenchmarkAuthMiddleware(b *testing.B) {
	e := newPerfEnv(b)
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := e.auth.Middleware(noop)
	b.Run("serial", func(b *testing.B) { perfServe(b, h, getRequest(e.key), http.StatusNoContent) })
	b.Run("parallel", func(b *testing.B) { perfServeParallel(b, h, getRequest(e.key), http.StatusNoContent) })
}

// BenchmarkCacheLookupHit is KeyCache.Lookup of a cached key.
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
	if n := e.store.gets.Load(); n != 1 {
		b.Fatalf("%d store calls, want 1", n)
	}
}

// BenchmarkParseKey is the key-format check of a valid key and of malformed
// ones; none may allocate.
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
	// A valid key from GOMAXPROCS goroutines: ParseKey shares nothing, so
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
// path (the cache's, the LRU's, the middleware's, the meter's).
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

// BenchmarkMalformedKey is the refusal of malformed keys through the
// deployed Server: 401 invalid_api_key, a WARNING log entry (formatted, then
// discarded) and no store call, which the benchmark asserts and reports as
// storecalls/op.
func BenchmarkMalformedKey(b *testing.B) {
	e := newPerfEnv(b)
	s := e.server(b)
	key := e.key
	for _, c := range []struct{ name, key string }{
		{"bad_checksum", key[:len(key)-1] + string(otherBase62(key[len(key)-1]))},
		{"wrong_prefix", "xx" + key[2:]},
		{"too_long", key + key},
		{"bad_alphabet", key[:10] + "-" + key[11:]},
	} {
		b.Run(c.name, func(b *testing.B) {
			before := e.store.gets.Load()
			perfServe(b, s, getRequest(c.key), http.StatusUnauthorized)
			calls := e.store.gets.Load() - before
			b.ReportMetric(float64(calls)/float64(b.N+1), "storecalls/op")
			if calls != 0 {
				b.Fatalf("malformed key made %d store calls, want 0", calls)
			}
		})
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

// bingoHandlers are the bingo check bare, and behind the auth middleware
// and its scope check.
func bingoHandlers(e *perfEnv) []namedHandler {
	return []namedHandler{
		{"handler=bare", http.HandlerFunc(handleBingoCheck)},
		{"handler=auth", e.auth.Middleware(e.auth.requireScope(ScopeBingoCheck, handleBingoCheck))},
	}
}

// BenchmarkAuthBingo is POST /v1/bingo/check: the bare handler, and the same
// handler behind the auth middleware and its scope check (bingo:check, a
// default scope), on a cache hit.
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
