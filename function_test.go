package keygate

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// resetFunction clears the function's package-level state, so that the next
// API call builds it again from the environment, and sends its logs to a
// buffer.
func resetFunction(t *testing.T, store KeyStore) *syncBuffer {
	t.Helper()
	log, buf := testLogger()
	oldLog := defaultLog
	reset := func() {
		defaultOnce = sync.Once{}
		defaultStore, defaultServer, defaultErr = nil, nil, nil
	}
	reset()
	defaultLog = log
	UseKeyStore(store)
	t.Cleanup(func() { reset(); defaultLog = oldLog })
	return buf
}

func callAPI(method, target, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	w := httptest.NewRecorder()
	API(w, r)
	return w
}

func TestAPI(t *testing.T) {
	store := NewMemoryStore()
	resetFunction(t, store)
	key, _ := mintTestKey(t, store, "acme", func(k *Key) { k.CreatedAt = time.Now() })
	revoked, _ := mintTestKey(t, store, "acme", func(k *Key) { k.RevokedAt = time.Now() })
	cases := []struct {
		name, method, target, key string
		want                      int
		wantBody                  string
	}{
		{"valid key", "GET", "/", key, 200, `{"message":"Hello World"}`},
		{"no key", "GET", "/", "", 401, `"code":"missing_api_key"`},
		{"revoked key", "GET", "/", revoked, 401, `"code":"invalid_api_key"`},
		{"unknown path", "GET", "/v2/nothing", key, 404, `"code":"not_found"`},
		{"wrong method", "PUT", "/", key, 405, `"code":"method_not_allowed"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := callAPI(c.method, c.target, c.key)
			if w.Code != c.want || !strings.Contains(w.Body.String(), c.wantBody) {
				t.Errorf("%s %s = %d %s, want %d with %s", c.method, c.target, w.Code, w.Body, c.want, c.wantBody)
			}
		})
	}
}

func TestAPIKeepsStateAcrossInvocations(t *testing.T) {
	store := &testStore{KeyStore: NewMemoryStore()}
	resetFunction(t, store)
	key, _ := mintTestKey(t, store, "acme", func(k *Key) { k.CreatedAt = time.Now() })
	for range 10 {
		if w := callAPI("GET", "/", key); w.Code != 200 {
			t.Fatal(w.Code)
		}
	}
	if n := store.gets.Load(); n != 1 {
		t.Errorf("10 invocations made %d store calls, want 1: one cache for the process", n)
	}
}

func TestAPIMisconfigured(t *testing.T) {
	logs := resetFunction(t, NewMemoryStore())
	t.Setenv("KEY_CACHE_TTL", "sixty")
	w := callAPI("GET", "/", "")
	if w.Code != http.StatusInternalServerError || problemOf(t, w).Code != "misconfigured" {
		t.Errorf("misconfigured API = %d %s, want 500 misconfigured", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "KEY_CACHE_TTL") || !strings.Contains(logs.String(), `"severity":"ERROR"`) {
		t.Errorf("log does not name the variable at ERROR: %s", logs)
	}
	if strings.Contains(w.Body.String(), "KEY_CACHE_TTL") {
		t.Errorf("response reveals the configuration: %s", w.Body)
	}
}

// TestServerOnEmulator runs the function's hot path on the real Firestore
// emulator: keys minted into Firestore, checked through the cache.
func TestServerOnEmulator(t *testing.T) {
	cfg := emulatorConfig(t)
	store := &testStore{KeyStore: newEmulatorStore(t, func(c *Config) { *c = cfg })}
	log, _ := testLogger()
	clock := newFakeClock()
	s := NewServer(cfg, store, Options{Logger: log, Now: clock.Now})
	key, k := mintTestKey(t, store, "acme")
	expired, _ := mintTestKey(t, store, "acme", func(k *Key) { k.ExpiresAt = t0.Add(-time.Minute) })
	unknown, _ := NewKey("kg")
	get := func(key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	for _, c := range []struct {
		key  string
		want int
		code string
	}{{key, 200, ""}, {unknown, 401, "invalid_api_key"}, {expired, 401, "expired_api_key"}} {
		w := get(c.key)
		if w.Code != c.want || c.code != "" && problemOf(t, w).Code != c.code {
			t.Errorf("key %s = %d %s, want %d %s", KeyHint(c.key), w.Code, w.Body, c.want, c.code)
		}
	}
	before := store.gets.Load()
	for range 20 {
		get(key)
	}
	if n := store.gets.Load() - before; n > 1 {
		t.Errorf("20 warm requests made %d store calls", n)
	}
	if _, err := store.Revoke(t.Context(), k.ID, t0); err != nil {
		t.Fatal(err)
	}
	if w := get(key); w.Code != 200 {
		t.Errorf("revoked key inside KEY_CACHE_TTL = %d, want 200 (the documented delay)", w.Code)
	}
	clock.Advance(cfg.CacheTTL)
	get(key) // served stale, and starts the refresh
	waitRefreshes(s.Keys())
	if w := get(key); w.Code != 401 {
		t.Errorf("revoked key after KEY_CACHE_TTL and one refresh = %d, want 401", w.Code)
	}
}
