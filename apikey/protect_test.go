package apikey

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/faultproxy"
	"github.com/keygate/keygate/internal/ratelimit"
	"github.com/keygate/keygate/internal/testkit"
)

// okBody is what the fixture's stand-in handlers answer.
const okBody = `{"ok":true}` + "\n"

func TestAuthResponses(t *testing.T) {
	s := newServer(t, nil)
	valid, _ := s.mint(t, "acme")
	revoked, _ := s.mint(t, "acme", func(k *store.Key) { k.RevokedAt = t0.Add(-time.Second) })
	expired, _ := s.mint(t, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(-time.Second) })
	future, _ := s.mint(t, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(time.Hour) })
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
			before := s.store.Gets.Load()
			w := s.do("GET", "/", "", c.keys...)
			if w.Code != c.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, c.wantStatus, w.Body)
			}
			if got := s.store.Gets.Load() - before; got > c.wantGets {
				t.Errorf("store calls = %d, want at most %d", got, c.wantGets)
			}
			if c.wantStatus == 200 {
				if w.Body.String() != okBody {
					t.Errorf("body = %s", w.Body)
				}
				return
			}
			if p := testkit.Problem(t, w); p.Code != c.wantCode {
				t.Errorf("code = %s, want %s", p.Code, c.wantCode)
			}
			if c.wantStatus == 401 && w.Header().Get("WWW-Authenticate") != `APIKey realm="keygate", header="X-API-Key"` {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestAuthInvalidKeysLookAlike(t *testing.T) {
	s := newServer(t, nil)
	revoked, _ := s.mint(t, "acme", func(k *store.Key) { k.RevokedAt = t0 })
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
	s := newServer(t, nil)
	valid, _ := s.mint(t, "acme")
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
	s := newServer(t, nil, func(c *Config) { c.Header = "X-Bingo-Key"; c.Prefix = "bingo" })
	key, k, err := keyrules.Mint("bingo", store.Key{Owner: "acme", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.Create(t.Context(), k); err != nil {
		t.Fatal(err)
	}
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

// TestAuthBearer: with API_KEY_HEADER=Authorization the key is read after
// the scheme Bearer, in any case, or alone; another scheme is a 401 that
// names Bearer, and every 401 challenges with Bearer. A valid key is
// refused after another scheme too: the scheme is checked first.
func TestAuthBearer(t *testing.T) {
	s := newServer(t, nil, func(c *Config) { c.Header = "Authorization" })
	valid, _ := s.mint(t, "acme")
	unknown, _ := keyformat.New("kg")
	const wrongScheme = "Send the API key with the Bearer scheme: Authorization: Bearer <key>."
	cases := []struct {
		name       string
		values     []string
		wantStatus int
		wantCode   string
		wantDetail string
	}{
		{"Bearer", []string{"Bearer " + valid}, 200, "", ""},
		{"bearer, lower case", []string{"bearer " + valid}, 200, "", ""},
		{"BEARER, two spaces", []string{"BEARER  " + valid}, 200, "", ""},
		{"no scheme", []string{valid}, 200, "", ""},
		{"with and without the scheme", []string{"Bearer " + valid, valid}, 200, "", ""},
		{"Bearer, an unknown key", []string{"Bearer " + unknown}, 401, "invalid_api_key", "The API key is not valid."},
		{"Basic", []string{"Basic " + valid}, 401, "invalid_api_key", wrongScheme},
		{"Token", []string{"Token " + valid}, 401, "invalid_api_key", wrongScheme},
		{"a key and a space", []string{valid + " x"}, 401, "invalid_api_key", wrongScheme},
		{"Bearer alone", []string{"Bearer"}, 401, "missing_api_key", "Send your API key in the Authorization header: Authorization: Bearer <key>."},
		{"Bearer and nothing", []string{"Bearer "}, 401, "missing_api_key", "Send your API key in the Authorization header: Authorization: Bearer <key>."},
		{"two keys", []string{"Bearer " + valid, "Bearer " + unknown}, 400, "multiple_api_keys", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, v := range c.values {
				r.Header.Add("Authorization", v)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != c.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, c.wantStatus, w.Body)
			}
			if c.wantStatus == 200 {
				return
			}
			p := testkit.Problem(t, w)
			if p.Code != c.wantCode || (c.wantDetail != "" && p.Detail != c.wantDetail) {
				t.Errorf("problem = %s %q, want %s %q", p.Code, p.Detail, c.wantCode, c.wantDetail)
			}
			if strings.Contains(w.Body.String(), valid) {
				t.Errorf("the answer echoes the key: %s", w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); c.wantStatus == 401 && got != `Bearer realm="keygate"` {
				t.Errorf("WWW-Authenticate = %q, want Bearer's", got)
			}
		})
	}
}

// TestAuthPutsKeyInContext checks that behind Protect and behind
// Authenticate the handler finds the verified key with FromContext, with
// the scopes it grants: its own, or the configured defaults when it has
// none.
func TestAuthPutsKeyInContext(t *testing.T) {
	s := newServer(t, nil)
	scoped, want := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
	plain, _ := s.mint(t, "acme")
	var got Key
	var ok bool
	capture := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok = FromContext(r.Context())
	})
	for name, h := range map[string]http.Handler{"Protect": s.Protect(scopeThings, capture), "Authenticate": s.Authenticate(capture)} {
		t.Run(name, func(t *testing.T) {
			got, ok = Key{}, false
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-API-Key", scoped)
			h.ServeHTTP(httptest.NewRecorder(), r)
			if !ok || got.ID != want.ID || got.Owner != "acme" || got.Name != want.Name || !slices.Equal(got.Scopes, []string{scopeThings}) {
				t.Errorf("FromContext = %+v, %v; want %+v", got, ok, want)
			}
			got, ok = Key{}, false
			r = httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-API-Key", plain)
			h.ServeHTTP(httptest.NewRecorder(), r)
			if !ok || !slices.Equal(got.Scopes, []string{scopeThings, scopeUsage}) {
				t.Errorf("FromContext of a key without scopes = %+v, %v; want the default scopes", got, ok)
			}
		})
	}
	if _, ok := FromContext(t.Context()); ok {
		t.Error("FromContext found a key in a bare context")
	}
}

func TestAuthStoreDown(t *testing.T) {
	s := newServer(t, nil)
	cached, _ := s.mint(t, "acme")
	uncached, _ := s.mint(t, "acme")
	if w := s.do("GET", "/", "", cached); w.Code != 200 {
		t.Fatalf("warm-up = %d", w.Code)
	}
	s.store.Down.Store(true)
	s.clock.Advance(2 * time.Minute) // past the fresh window, inside the stale one
	if w := s.do("GET", "/", "", cached); w.Code != 200 {
		t.Errorf("cached key with the store down = %d, want 200", w.Code)
	}
	w := s.do("GET", "/", "", uncached)
	if w.Code != 503 || testkit.Problem(t, w).Code != "store_unavailable" || w.Header().Get("Retry-After") != "1" {
		t.Errorf("uncached key with the store down = %d %s Retry-After %q, want 503 store_unavailable", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	s.store.Down.Store(false)
	if w := s.do("GET", "/", "", uncached); w.Code != 200 {
		t.Errorf("uncached key after the store came back = %d, want 200", w.Code)
	}
	s.waitRefreshes()
}

func TestAuthHangingStore(t *testing.T) {
	s := newServer(t, nil, func(c *Config) { c.StoreTimeout = 200 * time.Millisecond })
	key, _ := s.mint(t, "acme")
	s.store.Hang.Store(true)
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

// TestAuthRevocationSeenAfterCacheTTL: a key revoked outside keygate (see
// editedOutside; through keygate, the change feed tells the Gate: see
// changes_test.go) is refused once its entry is older than KEY_CACHE_TTL
// (the request after that starts a read), not before.
func TestAuthRevocationSeenAfterCacheTTL(t *testing.T) {
	s := newServer(t, editedOutside(memstore.New()))
	key, k := s.mint(t, "acme")
	if w := s.do("GET", "/", "", key); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if _, err := s.store.Revoke(t.Context(), k.ID, t0); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(59 * time.Second)
	if w := s.do("GET", "/", "", key); w.Code != 200 {
		t.Errorf("inside KEY_CACHE_TTL = %d, want 200 (the documented delay)", w.Code)
	}
	s.clock.Advance(time.Second)
	s.do("GET", "/", "", key) // served stale, and starts the refresh
	s.waitRefreshes()
	if w := s.do("GET", "/", "", key); w.Code != 401 {
		t.Errorf("after KEY_CACHE_TTL and one refresh = %d, want 401", w.Code)
	}
}

func TestAuthExpiryCheckedOnEveryHit(t *testing.T) {
	s := newServer(t, nil)
	key, _ := s.mint(t, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(10 * time.Second) })
	if w := s.do("GET", "/", "", key); w.Code != 200 {
		t.Fatal(w.Code)
	}
	s.clock.Advance(10 * time.Second) // still inside the fresh window
	w := s.do("GET", "/", "", key)
	if w.Code != 401 || testkit.Problem(t, w).Code != "expired_api_key" {
		t.Errorf("after expiry = %d %s, want 401 expired_api_key", w.Code, w.Body)
	}
	if n := s.store.Gets.Load(); n != 1 {
		t.Errorf("store calls = %d, want 1: expiry is checked on the cached key", n)
	}
}

func TestAuthConcurrentColdRequestsMakeOneStoreCall(t *testing.T) {
	s := newServer(t, nil)
	key, _ := s.mint(t, "acme")
	s.store.Release = make(chan struct{})
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for range 100 {
		wg.Go(func() { codes <- s.do("GET", "/", "", key).Code })
	}
	time.Sleep(100 * time.Millisecond)
	close(s.store.Release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	if n := s.store.Gets.Load(); n != 1 {
		t.Errorf("100 concurrent cold requests made %d store calls, want 1", n)
	}
}

// doFromAddr serves GET / with key from the client address addr.
func (s *server) doFromAddr(addr, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = addr + ":1234"
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// doForwarded is GET / with key and X-Forwarded-For xff, as the platform
// in front delivers it, from its proxy's address.
func (s *server) doForwarded(xff, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "169.254.1.1:1234"
	r.Header.Set("X-Forwarded-For", xff)
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// TestAuthOutage checks what an outage of the store looks like over HTTP: a
// cached key gets 200 (served stale) on every request, with at most one
// store call a second; an uncached key gets 503 store_unavailable with
// Retry-After, never 401; and after the store recovers, a key revoked
// meanwhile (outside keygate: the refresh, not the change feed, finds it)
// is refused after one refresh.
func TestAuthOutage(t *testing.T) {
	cases := []struct {
		name   string
		outage func(*testkit.FaultyStore, bool)
	}{
		{"store hangs", func(s *testkit.FaultyStore, on bool) { s.Hang.Store(on) }},
		{"store fails", func(s *testkit.FaultyStore, on bool) { s.Down.Store(on) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, editedOutside(memstore.New()), func(c *Config) { c.StoreTimeout = 50 * time.Millisecond })
			cached, k := s.mint(t, "acme")
			uncached, _ := s.mint(t, "acme")
			if w := s.do("GET", "/", "", cached); w.Code != 200 {
				t.Fatalf("warm-up = %d", w.Code)
			}
			tc.outage(s.store, true)
			const seconds = 3
			if n := s.serveStaleThroughOutage(t, cached, seconds); n > seconds {
				t.Errorf("%d s of requests for one cached key made %d store calls, want at most %d", seconds, n, seconds)
			}
			w := s.do("GET", "/", "", uncached)
			if w.Code != 503 || testkit.Problem(t, w).Code != "store_unavailable" || w.Header().Get("Retry-After") != "1" {
				t.Errorf("uncached key in the outage = %d %s Retry-After %q, want 503 store_unavailable", w.Code, w.Body, w.Header().Get("Retry-After"))
			}

			tc.outage(s.store, false)
			if _, err := s.store.Revoke(t.Context(), k.ID, t0); err != nil {
				t.Fatal(err)
			}
			s.refusedAfterOneRefresh(t, cached)
		})
	}
}

// TestAuthUnknownKeyBudget checks the budget of store reads for unknown
// keys: per client address, per instance, and that valid keys are not
// charged.
func TestAuthUnknownKeyBudget(t *testing.T) {
	lim := ratelimit.DefaultUnknownKeyLimits
	burst, instanceBurst := int(lim.Burst), int(lim.InstanceBurst)
	forged := func() string { k, _ := keyformat.New("kg"); return k }
	cases := []struct {
		name string
		run  func(t *testing.T, s *server)
	}{
		{"a flood from one address reads at most burst + rate × t", func(t *testing.T, s *server) {
			const n, step = 400, 100 * time.Millisecond // 40 s
			refused := 0
			for range n {
				w := s.doFromAddr("203.0.113.1", forged())
				switch w.Code {
				case 401:
				case 429:
					refused++
					if testkit.Problem(t, w).Code != "too_many_unknown_keys" || w.Header().Get("Retry-After") == "" {
						t.Fatalf("429 = %s Retry-After %q", w.Body, w.Header().Get("Retry-After"))
					}
				default:
					t.Fatalf("forged key = %d %s", w.Code, w.Body)
				}
				s.clock.Advance(step)
			}
			reads := s.store.Gets.Load()
			if bound := int64(burst) + int64(lim.Rate*40); reads > bound || reads < bound-2 {
				t.Errorf("%d forged keys in 40 s made %d store reads, want about burst + rate × 40 s = %d", n, reads, bound)
			}
			if int64(n-refused) != reads {
				t.Errorf("%d refused of %d, with %d reads: a refused key was read", refused, n, reads)
			}
			if !strings.Contains(s.logs.String(), `"reason":"address_budget"`) {
				t.Errorf("no log entry with the reason, the address's budget:\n%s", s.logs)
			}
		}},
		{"another address and cached keys are unaffected", func(t *testing.T, s *server) {
			valid, _ := s.mint(t, "acme")
			if w := s.doFromAddr("203.0.113.1", valid); w.Code != 200 {
				t.Fatalf("valid key = %d", w.Code)
			}
			for range 5 * burst {
				s.doFromAddr("203.0.113.1", forged())
			}
			if w := s.doFromAddr("203.0.113.1", forged()); w.Code != 429 {
				t.Fatalf("forged key past the burst = %d, want 429", w.Code)
			}
			if w := s.doFromAddr("203.0.113.1", valid); w.Code != 200 {
				t.Errorf("cached valid key from the flooding address = %d, want 200", w.Code)
			}
			s.clock.Advance(2 * time.Minute) // stale: still served, without a charge
			if w := s.doFromAddr("203.0.113.1", valid); w.Code != 200 {
				t.Errorf("stale valid key from the flooding address = %d, want 200", w.Code)
			}
			s.waitRefreshes()
			for i := range burst {
				if w := s.doFromAddr("198.51.100.7", forged()); w.Code != 401 {
					t.Fatalf("forged key %d from another address = %d, want 401", i, w.Code)
				}
			}
		}},
		{"valid uncached keys are not charged", func(t *testing.T, s *server) {
			for i := range 3 * burst {
				valid, _ := s.mint(t, "acme")
				if w := s.doFromAddr("203.0.113.1", valid); w.Code != 200 {
					t.Fatalf("valid key %d = %d %s, want 200", i, w.Code, w.Body)
				}
			}
			for i := range burst {
				if w := s.doFromAddr("203.0.113.1", forged()); w.Code != 401 {
					t.Fatalf("forged key %d after the valid ones = %d, want 401: valid keys drained the budget", i, w.Code)
				}
			}
			if w := s.doFromAddr("203.0.113.1", forged()); w.Code != 429 {
				t.Errorf("forged key past the burst = %d, want 429", w.Code)
			}
		}},
		{"the instance ceiling bounds all addresses together", func(t *testing.T, s *server) {
			valid, _ := s.mint(t, "acme")
			if w := s.doFromAddr("192.0.2.200", valid); w.Code != 200 {
				t.Fatalf("valid key = %d", w.Code)
			}
			for i := range instanceBurst / burst {
				for range burst {
					if w := s.doFromAddr("198.51.100."+strconv.Itoa(i), forged()); w.Code != 401 {
						t.Fatalf("forged key from address %d = %d, want 401", i, w.Code)
					}
				}
			}
			w := s.doFromAddr("192.0.2.99", forged())
			if p := testkit.Problem(t, w); w.Code != 429 || !strings.Contains(p.Detail, "all clients of this server instance") {
				t.Errorf("forged key from a new address past the instance ceiling = %d %q, want 429 naming the instance's budget", w.Code, p.Detail)
			}
			if !strings.Contains(s.logs.String(), `"reason":"instance_budget"`) {
				t.Errorf("no log entry with the reason, the instance's budget:\n%s", s.logs)
			}
			if w := s.doFromAddr("192.0.2.99", valid); w.Code != 200 {
				t.Errorf("cached valid key past the instance ceiling = %d, want 200", w.Code)
			}
			if n := s.store.Gets.Load(); n != int64(instanceBurst)+1 {
				t.Errorf("store reads = %d, want the instance burst %d plus the valid key", n, instanceBurst)
			}
		}},
		{"X-Forwarded-For names the address", func(t *testing.T, s *server) {
			for range burst {
				s.doForwarded("10.0.0.1, 203.0.113.9", forged())
			}
			w := s.doFromAddr("203.0.113.9", forged())
			if p := testkit.Problem(t, w); w.Code != 429 || !strings.Contains(p.Detail, "from this client address") {
				t.Errorf("the address of the last X-Forwarded-For entry = %d %q, want 429 naming this address's budget", w.Code, p.Detail)
			}
		}},
		// On Cloud Run the front end appends the caller's address: what a
		// client writes comes before it.
		{"a spoofed X-Forwarded-For cannot spend another address's budget", func(t *testing.T, s *server) {
			for range 5 * burst {
				s.doForwarded("203.0.113.9, 198.51.100.66", forged()) // the attacker claims the victim's address
			}
			if w := s.doForwarded("203.0.113.9, 198.51.100.66", forged()); w.Code != 429 {
				t.Errorf("the attacker past its burst = %d, want 429", w.Code)
			}
			for i := range burst {
				if w := s.doForwarded("203.0.113.9", forged()); w.Code != 401 {
					t.Fatalf("the victim's forged key %d = %d, want 401: its budget untouched", i, w.Code)
				}
			}
		}},
		{"a spoofed X-Forwarded-For cannot move a client into another's budget", func(t *testing.T, s *server) {
			for range burst {
				s.doForwarded("198.51.100.66", forged())
			}
			for _, spoof := range []string{"203.0.113.9, 198.51.100.66", "203.0.113.9,198.51.100.66", "2001:db8::1, 198.51.100.66"} {
				if w := s.doForwarded(spoof, forged()); w.Code != 429 {
					t.Errorf("a spent address claiming another (%q) = %d, want 429: its own budget", spoof, w.Code)
				}
			}
		}},
		{"a flood of spoofed addresses from one client cannot spend the instance's budget", func(t *testing.T, s *server) {
			for i := range 2 * instanceBurst { // each request claims an address of its own
				s.doForwarded(fmt.Sprintf("10.0.%d.%d, 198.51.100.66", i/250, i%250), forged())
			}
			if n := s.store.Gets.Load(); n != int64(burst) {
				t.Errorf("%d requests claiming %d addresses made %d store reads, want the one address's burst, %d", 2*instanceBurst, 2*instanceBurst, n, burst)
			}
			for i := range burst {
				if w := s.doForwarded("203.0.113.9", forged()); w.Code != 401 {
					t.Fatalf("another client's forged key %d = %d, want 401: the instance's budget untouched", i, w.Code)
				}
			}
		}},
		{"IPv6 addresses of one /64 share a budget", func(t *testing.T, s *server) {
			for i := range burst {
				if w := s.doForwarded("2001:db8:1:2::"+strconv.Itoa(i+1), forged()); w.Code != 401 {
					t.Fatalf("forged key %d = %d, want 401", i, w.Code)
				}
			}
			if w := s.doForwarded("2001:db8:1:2:ffff::9", forged()); w.Code != 429 {
				t.Errorf("another address of the same /64 = %d, want 429", w.Code)
			}
			if w := s.doForwarded("2001:db8:1:3::1", forged()); w.Code != 401 {
				t.Errorf("an address of the next /64 = %d, want 401", w.Code)
			}
		}},
		{"reached directly, the connection's peer, whatever the header says", func(t *testing.T, _ *server) {
			s := newServer(t, nil, func(c *Config) { c.ClientAddress = "remote-addr" })
			for i := range burst { // from 169.254.1.1, each claiming another address
				s.doForwarded("203.0.113."+strconv.Itoa(i), forged())
			}
			if w := s.doForwarded("198.51.100.7", forged()); w.Code != 429 {
				t.Errorf("the same peer claiming a new address = %d, want 429", w.Code)
			}
		}},
		{"behind a load balancer, the entry before its own", func(t *testing.T, _ *server) {
			s := newServer(t, nil, func(c *Config) { c.ClientAddress = "load-balancer" })
			for range burst { // the client 203.0.113.9 behind the balancer 34.120.0.1
				s.doForwarded("203.0.113.9, 34.120.0.1", forged())
			}
			if w := s.doForwarded("6.6.6.6, 203.0.113.9, 34.120.0.1", forged()); w.Code != 429 {
				t.Errorf("the same client, a spoofed entry before = %d, want 429", w.Code)
			}
			if w := s.doForwarded("203.0.113.9, 198.51.100.7, 34.120.0.1", forged()); w.Code != 401 {
				t.Errorf("another client claiming the first = %d, want 401: its own budget", w.Code)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newServer(t, nil)) })
	}
}

// TestAuthFirestoreUnavailable is TestAuthOutage on the real Firestore
// emulator behind a proxy that, during the outage, answers every call with
// UNAVAILABLE (which the Firestore client retries for a while, then
// returns) or not at all (so the client waits for its deadline, the Gate's
// store timeout).
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
	// The emulator's first calls, on a cold JVM, can be slow: the direct
	// store's calls get emulatorConfig's timeout.
	timeout := emulatorConfig().StoreTimeout
	direct := firestorestore.New(firestorestore.Config{Project: project})
	t.Cleanup(func() { direct.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	if _, err := direct.Client(ctx); err != nil { // on the emulator itself, before the variable changes
		t.Fatal(err)
	}
	bounded := store.WithTimeout(direct, timeout)
	cached, k := testkit.MintKey(t, bounded, "acme")
	uncached, _ := testkit.MintKey(t, bounded, "acme")

	proxy, err := faultproxy.Start(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	t.Setenv("FIRESTORE_EMULATOR_HOST", proxy.Addr())
	proxied := firestorestore.New(firestorestore.Config{Project: project})
	t.Cleanup(func() { proxied.Close() })
	s := newServer(t, &testkit.FaultyStore{Store: editedOutside(proxied)}, func(c *Config) { c.Project = project; c.StoreTimeout = 3 * time.Second })

	for try := 0; ; try++ { // the proxied client's first call can be slow
		if _, err := store.WithTimeout(proxied, 3*time.Second).Get(t.Context(), k.ID); err == nil || try == 5 {
			break
		}
	}
	if w := s.do("GET", "/", "", cached); w.Code != 200 {
		t.Fatalf("warm-up through the proxy = %d %s", w.Code, w.Body)
	}
	proxy.Set(outage)
	const seconds = 3
	if n := s.serveStaleThroughOutage(t, cached, seconds); n < 1 || n > seconds {
		t.Errorf("%d s of requests for one cached key made %d store calls, want 1 to %d", seconds, n, seconds)
	}
	if !strings.Contains(s.logs.String(), "serving a stale cached key") {
		t.Errorf("no WARNING about the stale key:\n%s", s.logs)
	}
	w := s.do("GET", "/", "", uncached)
	if w.Code != 503 || testkit.Problem(t, w).Code != "store_unavailable" || w.Header().Get("Retry-After") != "1" {
		t.Errorf("uncached key in the outage = %d %s, want 503 store_unavailable", w.Code, w.Body)
	}

	if _, err := bounded.Revoke(t.Context(), k.ID, t0); err != nil {
		t.Fatal(err)
	}
	proxy.Set(faultproxy.Up)
	s.refusedAfterOneRefresh(t, cached)
}

// explainingStore is a FaultyStore whose errors say what to do, as
// firestorestore's do (Explain).
type explainingStore struct{ *testkit.FaultyStore }

func (explainingStore) Explain(err error) error {
	return fmt.Errorf("do this and that: %w", err)
}

// TestStoreErrorExplainedInLog: a refusal for a store that failed logs the
// store's explanation of the error, when it has one.
func TestStoreErrorExplainedInLog(t *testing.T) {
	fs := &testkit.FaultyStore{Store: memstore.New()}
	key, _ := testkit.MintKey(t, fs, "acme")
	log, logs := testkit.Logger()
	g := New(testConfig(), explainingStore{fs}, WithLogger(log))
	defer g.stop()
	fs.Down.Store(true)
	h := g.Protect("", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 503 || !strings.Contains(logs.String(), "do this and that: ") {
		t.Errorf("status %d, logs %s; want 503 and the store's explanation", w.Code, logs)
	}
}

// serveStaleThroughOutage moves past the fresh window of the cached key and
// sends it ten requests a second for seconds, failing the test unless each
// is served; it returns the store reads they made.
func (s *server) serveStaleThroughOutage(t *testing.T, cached string, seconds int) int64 {
	t.Helper()
	s.clock.Advance(61 * time.Second)
	before := s.store.Gets.Load()
	for i := range seconds * 10 {
		if w := s.do("GET", "/", "", cached); w.Code != 200 {
			t.Fatalf("cached key, request %d of the outage = %d %s, want 200", i, w.Code, w.Body)
		}
		s.clock.Advance(100 * time.Millisecond)
	}
	s.waitRefreshes()
	return s.store.Gets.Load() - before
}

// refusedAfterOneRefresh checks that, once the store is back and the key
// revoked there, the cached key is served stale once more, past the retry
// backoff, while one refresh reads it, and is refused after.
func (s *server) refusedAfterOneRefresh(t *testing.T, cached string) {
	t.Helper()
	s.clock.Advance(time.Second) // past the retry backoff
	before := s.store.Gets.Load()
	s.do("GET", "/", "", cached) // served stale; starts the refresh
	s.waitRefreshes()
	if w := s.do("GET", "/", "", cached); w.Code != 401 {
		t.Errorf("revoked key after recovery and one refresh = %d %s, want 401", w.Code, w.Body)
	}
	if n := s.store.Gets.Load() - before; n != 1 {
		t.Errorf("recovery took %d store calls, want 1 refresh", n)
	}
}

// TestProtectBehindAnotherGate: a key verified by one Gate is checked again
// by another, which has its own store and configuration: a key of the
// first Gate's store is refused by the second, and served behind the
// first's own Protect.
func TestProtectBehindAnotherGate(t *testing.T) {
	a, b := newServer(t, memstore.New()), newServer(t, memstore.New())
	key, _ := a.mint(t, "acme")
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k, ok := FromContext(r.Context()); !ok || k.Owner != "acme" {
			t.Errorf("FromContext = %+v, %v", k, ok)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	w := httptest.NewRecorder()
	a.Authenticate(b.Protect("", ok)).ServeHTTP(w, testkit.GetRequest(key))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("a key of Gate a behind Gate b: %d, want 401", w.Code)
	}
	if n := b.store.Gets.Load(); n != 1 {
		t.Errorf("Gate b made %d store reads, want 1: it did not check the key", n)
	}
	w = httptest.NewRecorder()
	a.Authenticate(a.Protect("", ok)).ServeHTTP(w, testkit.GetRequest(key))
	if w.Code != http.StatusNoContent {
		t.Errorf("behind its own Gate: %d, want 204", w.Code)
	}
}
