package keygate

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
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
	store := &testStore{KeyStore: NewMemoryStore()}
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
func problemOf(t testing.TB, w *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, w.Body)
	}
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %s: %v", w.Body, err)
	}
	if p.Status != w.Code || p.Type != problemTypePrefix+p.Code || p.Title == "" {
		t.Errorf("problem %+v does not match status %d", p, w.Code)
	}
	return p
}

func TestAuthResponses(t *testing.T) {
	s := newTestServer(t)
	valid, _ := mintTestKey(t, s.store, "acme")
	revoked, _ := mintTestKey(t, s.store, "acme", func(k *Key) { k.RevokedAt = t0.Add(-time.Second) })
	expired, _ := mintTestKey(t, s.store, "acme", func(k *Key) { k.ExpiresAt = t0.Add(-time.Second) })
	future, _ := mintTestKey(t, s.store, "acme", func(k *Key) { k.ExpiresAt = t0.Add(time.Hour) })
	unknown, _ := NewKey("kg")
	malformed := valid[:10] + "-" + valid[11:]
	otherPrefix, _ := NewKey("xx")

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
	revoked, _ := mintTestKey(t, s.store, "acme", func(k *Key) { k.RevokedAt = t0 })
	unknown, _ := NewKey("kg")
	var first *httptest.ResponseRecorder
	for _, key := range []string{"kg_nope", unknown, revoked} {
		w := s.do("GET", "/", "", key)
		if first == nil {
			first = w
			continue
		}
		if w.Code != first.Code || w.Body.String() != first.Body.String() || !equalHeaders(w.Header(), first.Header()) {
			t.Errorf("response for %s differs:\n%v %v %s\n%v %v %s", KeyHint(key), w.Code, w.Header(), w.Body, first.Code, first.Header(), first.Body)
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
	for _, target := range []string{"/?api_key=" + valid, "/?key=" + valid, "/?X-API-Key=" + valid} {
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
	key, k, err := MintKey("bingo", Key{Owner: "acme", CreatedAt: t0})
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
		t.Errorf("X-API-Key with a custom header = %d %q, want 401 naming X-Bingo-Key", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestAuthPutsKeyInContext(t *testing.T) {
	s := newTestServer(t)
	key, want := mintTestKey(t, s.store, "acme", func(k *Key) { k.Scopes = []string{"bingo:check"} })
	var got Key
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
	key, _ := mintTestKey(t, s.store, "acme", func(k *Key) { k.ExpiresAt = t0.Add(10 * time.Second) })
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
	revoked, _ := mintTestKey(t, s.store, "acme", func(k *Key) { k.RevokedAt = t0 })
	unknown, _ := NewKey("kg")
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
	for _, want := range []string{`"reason":"malformed_key"`, `"reason":"unknown_key"`, `"reason":"revoked_key"`, `"key_hint":"` + KeyHint(revoked) + `"`, `"severity":"WARNING"`, `"client_ip":"192.0.2.1"`} {
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
	manager, _ := mintTestKey(t, s.store, "acme", func(k *Key) { k.Scopes = []string{ScopeKeysManage} })
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
