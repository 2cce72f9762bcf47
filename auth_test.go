package keygate

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/faultproxy"
)

// testServer is a Server on a counting memory store with a fake clock and a
// log buffer.
type testServer struct {
	*Server
	store *testStore
	clock *fakeClock
	logs  *syncBuffer
}

func newTestServer(t testing.TB, change ...func(*Config)) *testServer {
	t.Helper()
	store := &testStore{KeyStore: memstore.New()}
	clock := newFakeClock()
	log, buf := testLogger()
	s := NewServer(testConfig(change...), store, Options{Now: clock.Now, Logger: log})
	return &testServer{Server: s, store: store, clock: clock, logs: buf}
}

// do serves one request with the given key headers (none when keys is nil).
func (s *testServer) do(method, target, body string, keys ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, k := range keys {
		r.Header.Add("X-API-Key", k)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// problemOf decodes a problem response, failing the test if it is not one.
func problemOf(t testing.TB, w *httptest.ResponseRecorder) problem.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, w.Body)
	}
	var p problem.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %s: %v", w.Body, err)
	}
	if p.Status != w.Code || p.Type != problem.TypePrefix+p.Code || p.Title == "" {
		t.Errorf("problem %+v does not match status %d", p, w.Code)
	}
	return p
}

func TestAuthResponses(t *testing.T) {
	s := newTestServer(t)
	valid, _ := mintTestKey(t, s.store, "acme")
	revoked, _ := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.RevokedAt = t0.Add(-time.Second) })
	expired, _ := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(-time.Second) })
	future, _ := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(time.Hour) })
	unknown, _ := keyformat.New("kg")
	malformed := valid[:10] + "-" + valid[11:]
	otherPrefix, _ := keyformat.New("xx")

	cases := []struct {
		name       string
		keys       []string
		wantStatus int
		wantCode   string
		wantGets   int64 // store calls this request may make
	}{
		{"valid", []string{valid}, 200, "", 1},
		{"valid, expiring later", []string{future}, 200, "", 1},
		{"missing", nil, 401, "missing_api_key", 0},
		{"empty", []string{""}, 401, "missing_api_key", 0},
		{"malformed", []string{malformed}, 401, "invalid_api_key", 0},
		{"garbage", []string{"hello"}, 401, "invalid_api_key", 0},
		{"oversized", []string{strings.Repeat("k", 8000)}, 401, "invalid_api_key", 0},
		{"other prefix", []string{otherPrefix}, 401, "invalid_api_key", 0},
		{"unknown", []string{unknown}, 401, "invalid_api_key", 1},
		{"revoked", []string{revoked}, 401, "invalid_api_key", 1},
		{"expired", []string{expired}, 401, "expired_api_key", 1},
		{"two different", []string{valid, unknown}, 400, "multiple_api_keys", 0},
		{"same twice", []string{valid, valid}, 200, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.store.gets.Load()
			w := s.do("GET", "/", "", c.keys...)
			if w.Code != c.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, c.wantStatus, w.Body)
			}
			if got := s.store.gets.Load() - before; got > c.wantGets {
				t.Errorf("store calls = %d, want at most %d", got, c.wantGets)
			}
			if c.wantStatus == 200 {
				if w.Body.String() != `{"message":"Hello World"}`+"\n" {
					t.Errorf("body = %s", w.Body)
				}
				return
			}
			if p := problemOf(t, w); p.Code != c.wantCode {
				t.Errorf("code = %s, want %s", p.Code, c.wantCode)
			}
			if c.wantStatus == 401 && w.Header().Get("WWW-Authenticate") != `APIKey realm="keygate", header="X-API-Key"` {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestAuthInvalidKeysLookAlike(t *testing.T) {
	s := newTestServer(t)
	revoked, _ := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.RevokedAt = t0 })
	unknown, _ := keyformat.New("kg")
	var first *httptest.ResponseRecorder
	for _, key := range []string{"kg_nope", unknown, revoked} {
		w := s.do("GET", "/", "", key)
		if first == nil {
			first = w
			continue
		}
		if w.Code != first.Code || w.Body.String() != first.Body.String() || !equalHeaders(w.Header(), first.Header()) {
			t.Errorf("response for %s differs:\n%v %v %s\n%v %v %s", keyformat.Hint(key), w.Code, w.Header(), w.Body, first.Code, first.Header(), first.Body)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a.Get(k) != b.Get(k) {
			return false
		}
	}
	return true
}

func TestAuthKeyOnlyFromHeader(t *testing.T) {
	s := newTestServer(t)
	valid, _ := mintTestKey(t, s.store, "acme")
	for _, target := range []string{"/?api_key=" + valid, "/?key=" + valid, "/?X-API-store.Key=" + valid} {
		if w := s.do("GET", target, ""); w.Code != 401 {
			t.Errorf("GET %s = %d, want 401", target, w.Code)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+valid)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("key in Authorization = %d, want 401", w.Code)
	}
}

func TestAuthCustomHeaderAndPrefix(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Header = "X-Bingo-Key"; c.Prefix = "bingo" })
	key, k, err := store.Mint("bingo", store.Key{Owner: "acme", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	s.store.Create(t.Context(), k)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("x-bingo-key", key)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("custom header = %d, want 200", w.Code)
	}
	if w := s.do("GET", "/", "", key); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `header="X-Bingo-Key"`) {
		t.Errorf("X-API-store.Key with a custom header = %d %q, want 401 naming X-Bingo-Key", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestAuthPutsKeyInContext(t *testing.T) {
	s := newTestServer(t)
	key, want := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.Scopes = []string{"bingo:check"} })
	var got store.Key
	var ok bool
	log, _ := testLogger()
	auth := NewAuthenticator(testConfig(), s.Keys(), s.clock.Now, log)
	handler := auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok = KeyFromContext(r.Context())
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", key)
	handler.ServeHTTP(httptest.NewRecorder(), r)
	if !ok || got.ID != want.ID || got.Owner != "acme" || got.Name != want.Name || len(got.Scopes) != 1 {
		t.Errorf("KeyFromContext = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := KeyFromContext(t.Context()); ok {
		t.Error("KeyFromContext found a key in a bare context")
	}
}

func TestAuthStoreDown(t *testing.T) {
	s := newTestServer(t)
	cached, _ := mintTestKey(t, s.store, "acme")
	uncached, _ := mintTestKey(t, s.store, "acme")
	if w := s.do("GET", "/", "", cached); w.Code != 200 {
		t.Fatalf("warm-up = %d", w.Code)
	}
	s.store.down.Store(true)
	s.clock.Advance(2 * time.Minute) // past the fresh window, inside the stale one
	if w := s.do("GET", "/", "", cached); w.Code != 200 {
		t.Errorf("cached key with the store down = %d, want 200", w.Code)
	}
	w := s.do("GET", "/", "", uncached)
	if w.Code != 503 || problemOf(t, w).Code != "store_unavailable" || w.Header().Get("Retry-After") != "1" {
		t.Errorf("uncached key with the store down = %d %s Retry-After %q, want 503 store_unavailable", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	s.store.down.Store(false)
	if w := s.do("GET", "/", "", uncached); w.Code != 200 {
		t.Errorf("uncached key after the store came back = %d, want 200", w.Code)
	}
}

func TestAuthHangingStore(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.StoreTimeout = 200 * time.Millisecond })
	key, _ := mintTestKey(t, s.store, "acme")
	s.store.hang.Store(true)
	start := time.Now()
	w := s.do("GET", "/", "", key)
	elapsed := time.Since(start)
	if w.Code != 503 {
		t.Errorf("hanging store = %d, want 503", w.Code)
	}
	if elapsed < 200*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("answered after %v, want about the 200ms store timeout", elapsed)
	}
}

func TestAuthRevocationSeenAfterCacheTTL(t *testing.T) {
	s := newTestServer(t)
	key, k := mintTestKey(t, s.store, "acme")
	if w := s.do("GET", "/", "", key); w.Code != 200 {
		t.Fatal(w.Code)
	}
	s.store.Revoke(t.Context(), k.ID, t0)
	s.clock.Advance(59 * time.Second)
	if w := s.do("GET", "/", "", key); w.Code != 200 {
		t.Errorf("inside KEY_CACHE_TTL = %d, want 200 (the documented delay)", w.Code)
	}
	s.clock.Advance(time.Second)
	s.do("GET", "/", "", key) // served stale, and starts the refresh
	waitRefreshes(s.Keys())
	if w := s.do("GET", "/", "", key); w.Code != 401 {
		t.Errorf("after KEY_CACHE_TTL and one refresh = %d, want 401", w.Code)
	}
}

func TestAuthExpiryCheckedOnEveryHit(t *testing.T) {
	s := newTestServer(t)
	key, _ := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(10 * time.Second) })
	if w := s.do("GET", "/", "", key); w.Code != 200 {
		t.Fatal(w.Code)
	}
	s.clock.Advance(10 * time.Second) // still inside the fresh window
	w := s.do("GET", "/", "", key)
	if w.Code != 401 || problemOf(t, w).Code != "expired_api_key" {
		t.Errorf("after expiry = %d %s, want 401 expired_api_key", w.Code, w.Body)
	}
	if n := s.store.gets.Load(); n != 1 {
		t.Errorf("store calls = %d, want 1: expiry is checked on the cached key", n)
	}
}

func TestAuthConcurrentColdRequestsMakeOneStoreCall(t *testing.T) {
	s := newTestServer(t)
	key, _ := mintTestKey(t, s.store, "acme")
	s.store.release = make(chan struct{})
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for range 100 {
		wg.Go(func() { codes <- s.do("GET", "/", "", key).Code })
	}
	time.Sleep(100 * time.Millisecond)
	close(s.store.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	if n := s.store.gets.Load(); n != 1 {
		t.Errorf("100 concurrent cold requests made %d store calls, want 1", n)
	}
}

func TestAuthLogsNeverHoldTheKey(t *testing.T) {
	s := newTestServer(t)
	valid, _ := mintTestKey(t, s.store, "acme")
	revoked, _ := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.RevokedAt = t0 })
	unknown, _ := keyformat.New("kg")
	malformed := valid[:20] + "!" + valid[21:]
	for _, key := range []string{valid, malformed, unknown, revoked} {
		s.do("GET", "/", "", key)
	}
	s.store.down.Store(true)
	s.clock.Advance(2 * time.Minute)
	s.do("GET", "/", "", valid) // stale-if-error warning
	logs := s.logs.String()
	for name, key := range map[string]string{"valid": valid, "malformed": malformed, "unknown": unknown, "revoked": revoked} {
		for i := 0; i+12 <= len(key)-3; i++ {
			if chunk := key[3+i : 3+i+12]; strings.Contains(logs, chunk) {
				t.Fatalf("logs hold %q of the %s key:\n%s", chunk, name, logs)
			}
		}
	}
	for _, want := range []string{`"reason":"malformed_key"`, `"reason":"unknown_key"`, `"reason":"revoked_key"`, `"key_hint":"` + keyformat.Hint(revoked) + `"`, `"severity":"WARNING"`, `"client_ip":"192.0.2.1"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestAuthLogTrace(t *testing.T) {
	cases := []struct {
		name, header, value, wantTrace, wantSpan string
		project                                  string
	}{
		{"cloud trace context", "X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1", "projects/p1/traces/105445aa7843bc8bf206b12000100000", "0000000000000001", "p1"},
		{"traceparent", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "projects/p1/traces/0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "p1"},
		{"no project", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "", "", ""},
		{"bad trace", "X-Cloud-Trace-Context", "nonsense", "", "", "p1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestServer(t, func(cfg *Config) { cfg.Project = c.project })
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set(c.header, c.value)
			s.ServeHTTP(httptest.NewRecorder(), r)
			var entry map[string]any
			if err := json.Unmarshal([]byte(s.logs.String()), &entry); err != nil {
				t.Fatalf("log %q: %v", s.logs, err)
			}
			if got, _ := entry[traceKey].(string); got != c.wantTrace {
				t.Errorf("trace = %q, want %q", got, c.wantTrace)
			}
			if got, _ := entry[spanKey].(string); got != c.wantSpan {
				t.Errorf("span = %q, want %q", got, c.wantSpan)
			}
			if entry["severity"] != "WARNING" || entry["message"] != "request refused" {
				t.Errorf("entry = %v", entry)
			}
		})
	}
}

func TestRoutingAfterAuth(t *testing.T) {
	s := newTestServer(t)
	key, _ := mintTestKey(t, s.store, "acme")
	cases := []struct {
		name, method, target string
		key                  bool
		wantStatus           int
		wantCode, wantAllow  string
	}{
		{"unknown path without key", "GET", "/nope", false, 401, "missing_api_key", ""},
		{"wrong method without key", "DELETE", "/", false, 401, "missing_api_key", ""},
		{"unknown path", "GET", "/nope", true, 404, "not_found", ""},
		{"wrong method", "DELETE", "/", true, 405, "method_not_allowed", "GET, HEAD"},
		{"HEAD", "HEAD", "/", true, 200, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var w *httptest.ResponseRecorder
			if c.key {
				w = s.do(c.method, c.target, "", key)
			} else {
				w = s.do(c.method, c.target, "")
			}
			if w.Code != c.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, c.wantStatus)
			}
			if c.wantCode != "" && problemOf(t, w).Code != c.wantCode {
				t.Errorf("code = %s, want %s", problemOf(t, w).Code, c.wantCode)
			}
			if got := w.Header().Get("Allow"); got != c.wantAllow {
				t.Errorf("Allow = %q, want %q", got, c.wantAllow)
			}
		})
	}
}

// bingoWinRequest is a request whose card wins row 2 and column 2.
const bingoWinRequest = `{"card":[[7,19,38,52,71],[3,24,41,49,66],[12,17,0,57,62],[1,28,33,60,74],[14,22,44,47,69]],"called":[12,57,17,62,38,41,33,44,5]}`

func TestBingoBehindAuthAndScope(t *testing.T) {
	s := newTestServer(t)
	plain, _ := mintTestKey(t, s.store, "acme") // default scopes: bingo:check
	manager, _ := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.Scopes = []string{ScopeKeysManage} })
	if w := s.do("POST", "/v1/bingo/check", bingoWinRequest); w.Code != 401 {
		t.Errorf("no key = %d, want 401", w.Code)
	}
	w := s.do("POST", "/v1/bingo/check", bingoWinRequest, manager)
	if w.Code != 403 || problemOf(t, w).Scope != ScopeBingoCheck {
		t.Errorf("key without bingo:check = %d %s, want 403 naming bingo:check", w.Code, w.Body)
	}
	w = s.do("POST", "/v1/bingo/check", bingoWinRequest, plain)
	if w.Code != 200 || !strings.HasPrefix(w.Body.String(), `{"bingo":true,"wins":[{"pattern":"line","kind":"row","index":2},{"pattern":"line","kind":"column","index":2}]`) {
		t.Errorf("bingo = %d %s", w.Code, w.Body)
	}
	if w := s.do("GET", "/v1/bingo/check", "", plain); w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET = %d Allow %q, want 405 Allow POST", w.Code, w.Header().Get("Allow"))
	}
}

// doFrom serves GET / with key from the client address addr.
func (s *testServer) doFrom(addr, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = addr + ":1234"
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// TestAuthOutage checks what an outage of the store looks like over HTTP: a
// cached key gets 200 (served stale) on every request, with at most one
// store call a second; an uncached key gets 503 store_unavailable with
// Retry-After, never 401; and after the store recovers, a key revoked
// meanwhile is refused after one refresh.
func TestAuthOutage(t *testing.T) {
	cases := []struct {
		name   string
		outage func(*testStore, bool)
	}{
		{"store hangs", func(s *testStore, on bool) { s.hang.Store(on) }},
		{"store fails", func(s *testStore, on bool) { s.down.Store(on) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, func(c *Config) { c.StoreTimeout = 50 * time.Millisecond })
			cached, k := mintTestKey(t, s.store, "acme")
			uncached, _ := mintTestKey(t, s.store, "acme")
			if w := s.do("GET", "/", "", cached); w.Code != 200 {
				t.Fatalf("warm-up = %d", w.Code)
			}
			tc.outage(s.store, true)
			s.clock.Advance(61 * time.Second)
			before := s.store.gets.Load()
			const seconds = 3
			for i := range seconds * 10 {
				if w := s.do("GET", "/", "", cached); w.Code != 200 {
					t.Fatalf("cached key, request %d of the outage = %d %s, want 200", i, w.Code, w.Body)
				}
				s.clock.Advance(100 * time.Millisecond)
			}
			waitRefreshes(s.Keys())
			if n := s.store.gets.Load() - before; n > seconds {
				t.Errorf("%d s of requests for one cached key made %d store calls, want at most %d", seconds, n, seconds)
			}
			w := s.do("GET", "/", "", uncached)
			if w.Code != 503 || problemOf(t, w).Code != "store_unavailable" || w.Header().Get("Retry-After") != "1" {
				t.Errorf("uncached key in the outage = %d %s Retry-After %q, want 503 store_unavailable", w.Code, w.Body, w.Header().Get("Retry-After"))
			}

			tc.outage(s.store, false)
			s.store.Revoke(t.Context(), k.ID, t0)
			s.clock.Advance(time.Second) // past the retry backoff
			before = s.store.gets.Load()
			s.do("GET", "/", "", cached) // served stale; starts the refresh
			waitRefreshes(s.Keys())
			if w := s.do("GET", "/", "", cached); w.Code != 401 {
				t.Errorf("revoked key after recovery and one refresh = %d, want 401", w.Code)
			}
			if n := s.store.gets.Load() - before; n != 1 {
				t.Errorf("recovery took %d store calls, want 1 refresh", n)
			}
		})
	}
}

// TestAuthUnknownKeyBudget checks the budget of store reads for unknown
// keys: per client address, per instance, and that valid keys are not
// charged.
func TestAuthUnknownKeyBudget(t *testing.T) {
	lim := defaultUnknownKeyLimits
	burst, instanceBurst := int(lim.burst), int(lim.instanceBurst)
	forged := func() string { k, _ := keyformat.New("kg"); return k }
	cases := []struct {
		name string
		run  func(t *testing.T, s *testServer)
	}{
		{"a flood from one address reads at most burst + rate × t", func(t *testing.T, s *testServer) {
			const n, step = 400, 100 * time.Millisecond // 40 s
			refused := 0
			for range n {
				w := s.doFrom("203.0.113.1", forged())
				switch w.Code {
				case 401:
				case 429:
					refused++
					if problemOf(t, w).Code != "too_many_unknown_keys" || w.Header().Get("Retry-After") == "" {
						t.Fatalf("429 = %s Retry-After %q", w.Body, w.Header().Get("Retry-After"))
					}
				default:
					t.Fatalf("forged key = %d %s", w.Code, w.Body)
				}
				s.clock.Advance(step)
			}
			reads := s.store.gets.Load()
			if bound := int64(burst) + int64(lim.rate*40); reads > bound || reads < bound-2 {
				t.Errorf("%d forged keys in 40 s made %d store reads, want about burst + rate × 40 s = %d", n, reads, bound)
			}
			if int64(n-refused) != reads {
				t.Errorf("%d refused of %d, with %d reads: a refused key was read", refused, n, reads)
			}
			if !strings.Contains(s.logs.String(), `"reason":"too_many_unknown_keys"`) {
				t.Errorf("no log entry with the reason:\n%s", s.logs)
			}
		}},
		{"another address and cached keys are unaffected", func(t *testing.T, s *testServer) {
			valid, _ := mintTestKey(t, s.store, "acme")
			if w := s.doFrom("203.0.113.1", valid); w.Code != 200 {
				t.Fatalf("valid key = %d", w.Code)
			}
			for range 5 * burst {
				s.doFrom("203.0.113.1", forged())
			}
			if w := s.doFrom("203.0.113.1", forged()); w.Code != 429 {
				t.Fatalf("forged key past the burst = %d, want 429", w.Code)
			}
			if w := s.doFrom("203.0.113.1", valid); w.Code != 200 {
				t.Errorf("cached valid key from the flooding address = %d, want 200", w.Code)
			}
			s.clock.Advance(2 * time.Minute) // stale: still served, without a charge
			if w := s.doFrom("203.0.113.1", valid); w.Code != 200 {
				t.Errorf("stale valid key from the flooding address = %d, want 200", w.Code)
			}
			waitRefreshes(s.Keys())
			for i := range burst {
				if w := s.doFrom("198.51.100.7", forged()); w.Code != 401 {
					t.Fatalf("forged key %d from another address = %d, want 401", i, w.Code)
				}
			}
		}},
		{"valid uncached keys are not charged", func(t *testing.T, s *testServer) {
			for i := range 3 * burst {
				valid, _ := mintTestKey(t, s.store, "acme")
				if w := s.doFrom("203.0.113.1", valid); w.Code != 200 {
					t.Fatalf("valid key %d = %d %s, want 200", i, w.Code, w.Body)
				}
			}
			for i := range burst {
				if w := s.doFrom("203.0.113.1", forged()); w.Code != 401 {
					t.Fatalf("forged key %d after the valid ones = %d, want 401: valid keys drained the budget", i, w.Code)
				}
			}
			if w := s.doFrom("203.0.113.1", forged()); w.Code != 429 {
				t.Errorf("forged key past the burst = %d, want 429", w.Code)
			}
		}},
		{"the instance ceiling bounds all addresses together", func(t *testing.T, s *testServer) {
			valid, _ := mintTestKey(t, s.store, "acme")
			if w := s.doFrom("192.0.2.200", valid); w.Code != 200 {
				t.Fatalf("valid key = %d", w.Code)
			}
			for i := range instanceBurst / burst {
				for range burst {
					if w := s.doFrom("198.51.100."+strconv.Itoa(i), forged()); w.Code != 401 {
						t.Fatalf("forged key from address %d = %d, want 401", i, w.Code)
					}
				}
			}
			if w := s.doFrom("192.0.2.99", forged()); w.Code != 429 {
				t.Errorf("forged key from a new address past the instance ceiling = %d, want 429", w.Code)
			}
			if w := s.doFrom("192.0.2.99", valid); w.Code != 200 {
				t.Errorf("cached valid key past the instance ceiling = %d, want 200", w.Code)
			}
			if n := s.store.gets.Load(); n != int64(instanceBurst)+1 {
				t.Errorf("store reads = %d, want the instance burst %d plus the valid key", n, instanceBurst)
			}
		}},
		{"X-Forwarded-For names the address", func(t *testing.T, s *testServer) {
			for range burst {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("X-Forwarded-For", "10.0.0.1, 203.0.113.9")
				r.Header.Set("X-API-Key", forged())
				s.ServeHTTP(httptest.NewRecorder(), r)
			}
			if w := s.doFrom("203.0.113.9", forged()); w.Code != 429 {
				t.Errorf("the address of the last X-Forwarded-For entry = %d, want 429", w.Code)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newTestServer(t)) })
	}
}

// TestAuthFirestoreUnavailable is TestAuthOutage on the real Firestore
// emulator behind a proxy that, during the outage, answers every call with
// UNAVAILABLE (which the Firestore client retries for a while, then
// returns) or not at all (so the client waits for its deadline).
func TestAuthFirestoreUnavailable(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode faultproxy.Mode
	}{{"unavailable", faultproxy.Unavailable}, {"hang", faultproxy.Hang}} {
		t.Run(mode.name, func(t *testing.T) { testFirestoreOutage(t, mode.mode) })
	}
}

func testFirestoreOutage(t *testing.T, outage faultproxy.Mode) {
	host, project := emulator.Project(t)
	ctx := context.Background()
	direct := firestorestore.New(testConfig(func(c *Config) { c.Project = project; c.StoreTimeout = 20 * time.Second }))
	t.Cleanup(func() { direct.Close() })
	if _, err := direct.Client(ctx); err != nil { // on the emulator itself, before the variable changes
		t.Fatal(err)
	}
	cached, k := mintTestKey(t, direct, "acme")
	uncached, _ := mintTestKey(t, direct, "acme")

	proxy, err := faultproxy.Start(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	t.Setenv("FIRESTORE_EMULATOR_HOST", proxy.Addr())
	cfg := testConfig(func(c *Config) { c.Project = project; c.StoreTimeout = 3 * time.Second })
	proxied := firestorestore.New(cfg)
	t.Cleanup(func() { proxied.Close() })
	store := &testStore{KeyStore: proxied}
	clock := newFakeClock()
	log, logs := testLogger()
	s := NewServer(cfg, store, Options{Now: clock.Now, Logger: log})
	t.Cleanup(func() { s.Close(context.Background()) })
	ts := &testServer{Server: s, store: store, clock: clock, logs: logs}

	for try := 0; ; try++ { // the proxied client's first call can be slow
		if _, err := proxied.Get(ctx, k.ID); err == nil || try == 5 {
			break
		}
	}
	if w := ts.do("GET", "/", "", cached); w.Code != 200 {
		t.Fatalf("warm-up through the proxy = %d %s", w.Code, w.Body)
	}
	proxy.Set(outage)
	clock.Advance(61 * time.Second)
	before := store.gets.Load()
	const seconds = 3
	for i := range seconds * 10 {
		if w := ts.do("GET", "/", "", cached); w.Code != 200 {
			t.Fatalf("cached key, request %d of the outage = %d %s, want 200", i, w.Code, w.Body)
		}
		clock.Advance(100 * time.Millisecond)
	}
	waitRefreshes(s.Keys())
	if n := store.gets.Load() - before; n < 1 || n > seconds {
		t.Errorf("%d s of requests for one cached key made %d store calls, want 1 to %d", seconds, n, seconds)
	}
	if !strings.Contains(logs.String(), "serving a stale cached key") {
		t.Errorf("no WARNING about the stale key:\n%s", logs)
	}
	w := ts.do("GET", "/", "", uncached)
	if w.Code != 503 || problemOf(t, w).Code != "store_unavailable" || w.Header().Get("Retry-After") != "1" {
		t.Errorf("uncached key in the outage = %d %s, want 503 store_unavailable", w.Code, w.Body)
	}

	if _, err := direct.Revoke(ctx, k.ID, t0); err != nil {
		t.Fatal(err)
	}
	proxy.Set(faultproxy.Up)
	clock.Advance(time.Second)
	before = store.gets.Load()
	ts.do("GET", "/", "", cached) // served stale; starts the refresh
	waitRefreshes(s.Keys())
	if w := ts.do("GET", "/", "", cached); w.Code != 401 {
		t.Errorf("revoked key after recovery and one refresh = %d %s, want 401", w.Code, w.Body)
	}
	if n := store.gets.Load() - before; n != 1 {
		t.Errorf("recovery took %d store calls, want 1 refresh", n)
	}
}
