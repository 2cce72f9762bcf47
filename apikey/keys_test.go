package apikey

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// newKeysServer is a server on the Firestore emulator with the fake clock,
// and a store timeout long enough for the emulator's first calls.
func newKeysServer(t *testing.T) *server {
	t.Helper()
	return newServer(t, testkit.EmulatorStore(t), slowStore)
}

// forEachKeysServer runs f on a server over each store (testkit.Stores).
func forEachKeysServer(t *testing.T, f func(t *testing.T, s *server)) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) { f(t, newServer(t, st, slowStore)) })
}

// manage gives a key the scope to manage keys, and the defaults.
func manage(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings, scopeUsage} }

func TestKeysOwnerIsolation(t *testing.T) {
	s := newKeysServer(t)
	aliceKey, _ := s.mint(t, "alice", manage)
	_, aliceOther := s.mint(t, "alice")
	bobKey, bob := s.mint(t, "bob", manage)

	var list keyListView
	testkit.MustJSON(t, s.call("GET", "/v1/keys", bobKey, ""), 200, &list)
	if len(list.Keys) != 1 || list.Keys[0].ID != bob.ID {
		t.Errorf("bob's list = %+v, want only bob's key", list.Keys)
	}
	absent := keyformat.ID("absent")
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/keys/%s", ""},
		{"DELETE", "/v1/keys/%s", ""},
		{"POST", "/v1/keys/%s/rotate", `{"grace":"1h"}`},
	} {
		other := s.call(c.method, fmt.Sprintf(c.path, aliceOther.ID), bobKey, c.body)
		none := s.call(c.method, fmt.Sprintf(c.path, absent), bobKey, c.body)
		testkit.WantProblem(t, other, 404, "key_not_found")
		if other.Body.String() != none.Body.String() {
			t.Errorf("%s of another owner's key differs from a missing one:\n%s\n%s", c.method, other.Body, none.Body)
		}
	}
	if got, _ := s.store.Get(t.Context(), aliceOther.ID); got.Status(s.clock.Now()) != store.StatusActive || !got.ExpiresAt.IsZero() {
		t.Errorf("bob changed alice's key: %+v", got)
	}
	if w := s.call("GET", "/", aliceKey, ""); w.Code != 200 {
		t.Errorf("alice's key = %d", w.Code)
	}
}

func TestKeysScopes(t *testing.T) {
	s := newKeysServer(t)
	plain, _ := s.mint(t, "acme") // default scopes
	narrow, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings} })
	_, broad := s.mint(t, "acme", manage)

	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/keys", `{"name":"x"}`},
		{"GET", "/v1/keys", ""},
		{"GET", "/v1/keys/" + broad.ID, ""},
		{"DELETE", "/v1/keys/" + broad.ID, ""},
		{"POST", "/v1/keys/" + broad.ID + "/rotate", `{}`},
	} {
		p := testkit.WantProblem(t, s.call(c.method, c.path, plain, c.body), 403, "insufficient_scope")
		if p.Scope != scopeKeys {
			t.Errorf("%s %s: scope = %q, want keys:manage", c.method, c.path, p.Scope)
		}
	}
	for _, c := range []struct {
		name, method, path, body, scope string
	}{
		{"explicit scope it lacks", "POST", "/v1/keys", `{"name":"x","scopes":["usage:read"]}`, scopeUsage},
		{"defaults it lacks", "POST", "/v1/keys", `{"name":"x"}`, scopeUsage},
		{"rotate a broader key", "POST", "/v1/keys/" + broad.ID + "/rotate", `{"grace":"1h"}`, scopeUsage},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := testkit.WantProblem(t, s.call(c.method, c.path, narrow, c.body), 403, "insufficient_scope")
			if p.Scope != c.scope {
				t.Errorf("scope = %q, want %q", p.Scope, c.scope)
			}
		})
	}
	var created view.NewKeyView
	testkit.MustJSON(t, s.call("POST", "/v1/keys", narrow, `{"name":"things only","scopes":["things:check"]}`), 201, &created)
	if !slices.Equal(created.Scopes, []string{scopeThings}) {
		t.Errorf("scopes = %v", created.Scopes)
	}
	if w := s.call("GET", "/v1/keys", created.Key, ""); w.Code != 403 {
		t.Errorf("the new things-only key listed keys: %d", w.Code)
	}
	if w := s.call("GET", "/", created.Key, ""); w.Code != 200 {
		t.Errorf("the new key on GET / = %d", w.Code)
	}
}

func TestKeysCreate(t *testing.T) {
	s := newKeysServer(t)
	caller, _ := s.mint(t, "acme", manage, func(k *store.Key) { k.ExpiresAt = t0.Add(time.Hour) })
	forever, _ := s.mint(t, "acme", manage)
	cases := []struct {
		name, key, body string
		wantExpires     *time.Time
	}{
		{"capped by the caller's expiry", caller, `{"name":"a","expires_in":"720h"}`, testkit.Ptr(t0.Add(time.Hour))},
		{"inherits the caller's expiry", caller, `{"name":"b"}`, testkit.Ptr(t0.Add(time.Hour))},
		{"shorter than the caller's", caller, `{"name":"c","expires_in":"30m"}`, testkit.Ptr(t0.Add(30 * time.Minute))},
		{"never", forever, `{"name":"d"}`, nil},
		{"own lifetime", forever, `{"name":"e","expires_in":"720h"}`, testkit.Ptr(t0.Add(720 * time.Hour))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := s.call("POST", "/v1/keys", c.key, c.body)
			var got view.NewKeyView
			testkit.MustJSON(t, w, 201, &got)
			if (got.ExpiresAt == nil) != (c.wantExpires == nil) || got.ExpiresAt != nil && !got.ExpiresAt.Equal(*c.wantExpires) {
				t.Errorf("expires_at = %v, want %v", got.ExpiresAt, c.wantExpires)
			}
			if keyformat.Parse(got.Key, "kg") != nil || keyformat.ID(got.Key) != got.ID || got.Owner != "acme" || got.Status != "active" {
				t.Errorf("created = %+v", got)
			}
			if w.Header().Get("Location") != "/v1/keys/"+got.ID {
				t.Errorf("Location = %q", w.Header().Get("Location"))
			}
			stored, err := s.store.Get(t.Context(), got.ID)
			if err != nil || stored.Owner != "acme" {
				t.Errorf("stored = %+v, %v", stored, err)
			}
		})
	}
	if !strings.Contains(s.logs.String(), `"severity":"NOTICE"`) || !strings.Contains(s.logs.String(), `"action":"create"`) {
		t.Errorf("no audit entry: %s", s.logs)
	}
}

// TestKeysLocationFollowsMount checks that the Location of a created or a
// rotated key is computed from the request's path, so that it names the new
// key under whatever prefix the application mounts the endpoints.
func TestKeysLocationFollowsMount(t *testing.T) {
	s := newServer(t, nil)
	key, _ := s.mint(t, "acme", manage)
	keys := s.KeysHandlers()
	mux := http.NewServeMux()
	mux.Handle("POST /api/v2/credentials", s.Protect(scopeKeys, keys.Create))
	mux.Handle("POST /api/v2/credentials/{id}/rotate", s.Protect(scopeKeys, keys.Rotate))
	post := func(target, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	var created view.NewKeyView
	w := post("/api/v2/credentials", `{"name":"a"}`)
	testkit.MustJSON(t, w, 201, &created)
	if loc, want := w.Header().Get("Location"), "/api/v2/credentials/"+created.ID; loc != want {
		t.Errorf("create: Location = %q, want %q", loc, want)
	}
	var rotated view.RotatedKeyView
	w = post("/api/v2/credentials/"+created.ID+"/rotate", `{"grace":"1h"}`)
	testkit.MustJSON(t, w, 201, &rotated)
	if loc, want := w.Header().Get("Location"), "/api/v2/credentials/"+rotated.ID; loc != want || rotated.ID == created.ID {
		t.Errorf("rotate: Location = %q, want %q, the new key's", loc, want)
	}
}

func TestKeysBadInput(t *testing.T) {
	s := newKeysServer(t)
	key, k := s.mint(t, "acme", manage)
	long := strings.Repeat("x", 101)
	cases := []struct {
		name, method, path, body, code, field string
		status                                int
	}{
		{"unknown field", "POST", "/v1/keys", `{"name":"a","owner":"evil"}`, "invalid_json", "owner", 400},
		{"not JSON", "POST", "/v1/keys", `{"name":`, "invalid_json", "", 400},
		{"name too long", "POST", "/v1/keys", `{"name":"` + long + `"}`, "invalid_name", "name", 400},
		{"name with control", "POST", "/v1/keys", `{"name":"a\u0007"}`, "invalid_name", "name", 400},
		// A well-formed scope is the application's; only a malformed one is
		// invalid (TestKeysApplicationScopes).
		{"malformed scope", "POST", "/v1/keys", `{"name":"a","scopes":["Admin:All"]}`, "invalid_scopes", "scopes", 400},
		{"repeated scope", "POST", "/v1/keys", `{"name":"a","scopes":["things:check","things:check"]}`, "invalid_scopes", "scopes", 400},
		{"empty scopes", "POST", "/v1/keys", `{"name":"a","scopes":[]}`, "invalid_scopes", "scopes", 400},
		{"bad duration", "POST", "/v1/keys", `{"name":"a","expires_in":"30d"}`, "invalid_expires_in", "expires_in", 400},
		{"negative duration", "POST", "/v1/keys", `{"name":"a","expires_in":"-1h"}`, "invalid_expires_in", "expires_in", 400},
		{"wrong type", "POST", "/v1/keys", `{"name":5}`, "invalid_json", "name", 400},
		{"limit zero", "GET", "/v1/keys?limit=0", "", "invalid_limit", "limit", 400},
		{"limit too big", "GET", "/v1/keys?limit=101", "", "invalid_limit", "limit", 400},
		{"limit not a number", "GET", "/v1/keys?limit=ten", "", "invalid_limit", "limit", 400},
		{"bad page token", "GET", "/v1/keys?page_token=nope", "", "invalid_page_token", "page_token", 400},
		{"bad grace", "POST", "/v1/keys/" + k.ID + "/rotate", `{"grace":"a day"}`, "invalid_grace", "grace", 400},
		{"grace too long", "POST", "/v1/keys/" + k.ID + "/rotate", `{"grace":"721h"}`, "invalid_grace", "grace", 400},
		{"malformed id", "GET", "/v1/keys/xyz", "", "key_not_found", "", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testkit.WantProblem(t, s.call(c.method, c.path, key, c.body), c.status, c.code)
			if c.field != "" && (len(p.Errors) == 0 || !strings.Contains(p.Errors[0], c.field)) {
				t.Errorf("errors = %q, want one naming %s", p.Errors, c.field)
			}
		})
	}
	r := httptest.NewRequest("POST", "/v1/keys", strings.NewReader(`name=a`))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	testkit.WantProblem(t, w, 415, "unsupported_media_type")
}

func TestKeysRotationGrace(t *testing.T) {
	s := newKeysServer(t)
	oldKey, old := s.mint(t, "acme", manage, func(k *store.Key) { k.Name = "prod" })
	if w := s.call("GET", "/", oldKey, ""); w.Code != 200 { // cached before the rotation
		t.Fatal(w.Code)
	}
	var got view.RotatedKeyView
	w := s.call("POST", "/v1/keys/"+old.ID+"/rotate", oldKey, `{"grace":"1h"}`)
	testkit.MustJSON(t, w, 201, &got)
	if loc := w.Header().Get("Location"); loc != "/v1/keys/"+got.ID {
		t.Errorf("Location = %q, want the new key's /v1/keys/%s", loc, got.ID)
	}
	if got.Name != "prod" || got.Owner != "acme" || !slices.Equal(got.Scopes, old.Scopes) || got.ID == old.ID {
		t.Errorf("new key = %+v", got.KeyView)
	}
	if got.Replaces.ID != old.ID || got.Replaces.ExpiresAt == nil || !got.Replaces.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("replaces = %+v, want the old key expiring at now + 1h", got.Replaces)
	}
	s.clock.Advance(59 * time.Minute)
	for name, k := range map[string]string{"old": oldKey, "new": got.Key} {
		if w := s.call("GET", "/", k, ""); w.Code != 200 {
			t.Errorf("%s key inside the grace = %d", name, w.Code)
		}
	}
	s.clock.Advance(time.Minute)
	testkit.WantProblem(t, s.call("GET", "/", oldKey, ""), 401, "expired_api_key")
	if w := s.call("GET", "/", got.Key, ""); w.Code != 200 {
		t.Errorf("new key after the grace = %d", w.Code)
	}
	// An expired key cannot be rotated again.
	testkit.WantProblem(t, s.call("POST", "/v1/keys/"+old.ID+"/rotate", got.Key, `{"grace":"1h"}`), 409, "key_not_active")

	// The grace never extends an expiry, and an empty body means 24h.
	_, short := s.mint(t, "acme", func(k *store.Key) { k.ExpiresAt = s.clock.Now().Add(10 * time.Minute) })
	var again view.RotatedKeyView
	testkit.MustJSON(t, s.call("POST", "/v1/keys/"+short.ID+"/rotate", got.Key, ""), 201, &again)
	if !again.Replaces.ExpiresAt.Equal(s.clock.Now().Add(10 * time.Minute)) {
		t.Errorf("old expiry = %v, want unchanged", again.Replaces.ExpiresAt)
	}
	if !strings.Contains(s.logs.String(), `"action":"rotate"`) {
		t.Error("no audit entry for the rotation")
	}
}

func TestKeysRevokeThenUseOnSameInstance(t *testing.T) {
	s := newKeysServer(t)
	admin, _ := s.mint(t, "acme", manage)
	victimKey, victim := s.mint(t, "acme")
	if w := s.call("GET", "/", victimKey, ""); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if w := s.call("DELETE", "/v1/keys/"+victim.ID, admin, ""); w.Code != 204 || w.Body.Len() != 0 {
		t.Fatalf("DELETE = %d %s", w.Code, w.Body)
	}
	testkit.WantProblem(t, s.call("GET", "/", victimKey, ""), 401, "invalid_api_key")

	// A key may revoke itself.
	if w := s.call("DELETE", "/v1/keys/"+keyformat.ID(admin), admin, ""); w.Code != 204 {
		t.Fatalf("self-revoke = %d", w.Code)
	}
	testkit.WantProblem(t, s.call("GET", "/v1/keys", admin, ""), 401, "invalid_api_key")
	logs := s.logs.String()
	if strings.Count(logs, `"action":"revoke"`) != 2 || strings.Contains(logs, victimKey[3:20]) || strings.Contains(logs, admin[3:20]) {
		t.Errorf("audit entries wrong or holding a key: %s", logs)
	}
}

func TestKeysPagination(t *testing.T) {
	s := newKeysServer(t)
	admin, _ := s.mint(t, "acme", manage, func(k *store.Key) { k.CreatedAt = t0.Add(-time.Hour) })
	for i := range 24 {
		// Pairs share a creation time, so that ties on time are paged by ID.
		s.mint(t, "acme", func(k *store.Key) { k.CreatedAt = t0.Add(time.Duration(i/2) * time.Second) })
	}
	s.mint(t, "other")
	var want []string
	for k, err := range keyrules.OwnerKeys(t.Context(), s.store, "acme", store.MaxPageLimit) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, k.ID)
	}
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		var page keyListView
		testkit.MustJSON(t, s.call("GET", "/v1/keys?limit=10&page_token="+token, admin, ""), 200, &page)
		for _, k := range page.Keys {
			got = append(got, k.ID)
		}
		if page.NextPageToken == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		token = page.NextPageToken
	}
	if len(want) != 25 || !slices.Equal(got, want) {
		t.Errorf("paged IDs (%d) differ from the newest-first list (%d)", len(got), len(want))
	}
}

// effectiveBurst is the burst the rate limiter gives k: a rate without a
// burst allows one second's worth.
func effectiveBurst(k view.KeyView) int {
	if k.RateLimit > 0 && k.Burst == 0 {
		return max(1, int(math.Ceil(k.RateLimit)))
	}
	return k.Burst
}

// TestKeysNoBroaderThanCaller checks that a key minted by create or rotate
// never has a limit, scope or expiry broader than its caller's: rotating a
// sibling takes, per field, the tighter of the sibling's and the caller's.
func TestKeysNoBroaderThanCaller(t *testing.T) {
	thingsOnly := func(k *store.Key) { k.Scopes = []string{scopeThings} }
	limit := func(rate float64, burst int, quota int64) func(*store.Key) {
		return func(k *store.Key) { k.RateLimit, k.Burst, k.MonthlyQuota = rate, burst, quota }
	}
	expires := func(d time.Duration) func(*store.Key) { // 0: never
		return func(k *store.Key) {
			if d != 0 {
				k.ExpiresAt = t0.Add(d)
			}
		}
	}
	cases := []struct {
		name           string
		caller, target func(*store.Key)
		rate           float64
		burst          int
		quota          int64
		expires        time.Duration // 0: never
	}{
		{"rate and quota of a limited caller", limit(1, 0, 40), limit(0, 0, 0), 1, 1, 40, 0},
		{"rate tighter on the target", limit(5, 5, 0), limit(1, 1, 0), 1, 1, 0, 0},
		{"burst of the caller", limit(10, 2, 0), limit(10, 50, 0), 10, 2, 0, 0},
		{"caller's one second's worth", limit(1, 0, 0), limit(1, 100, 0), 1, 1, 0, 0},
		{"burst tighter on the target", limit(10, 0, 0), limit(100, 3, 0), 10, 3, 0, 0},
		{"quota tighter on the target", limit(0, 0, 40), limit(0, 0, 10), 0, 0, 10, 0},
		{"quota of the caller", limit(0, 0, 40), limit(0, 0, 1000), 0, 0, 40, 0},
		{"expiry of the caller", expires(time.Hour), expires(0), 0, 0, 0, time.Hour},
		{"expiry tighter on the target", expires(2 * time.Hour), expires(time.Hour), 0, 0, 0, time.Hour},
		{"unlimited both", limit(0, 0, 0), limit(0, 0, 0), 0, 0, 0, 0},
	}
	forEachKeysServer(t, func(t *testing.T, s *server) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				callerKey, caller := s.mint(t, "acme", manage, c.caller)
				_, target := s.mint(t, "acme", thingsOnly, c.target)
				check := func(what string, v view.KeyView) {
					t.Helper()
					var exp time.Time
					if v.ExpiresAt != nil {
						exp = *v.ExpiresAt
					}
					wantExp := time.Time{}
					if c.expires != 0 {
						wantExp = t0.Add(c.expires)
					}
					if v.RateLimit != c.rate || effectiveBurst(v) != c.burst || v.MonthlyQuota != c.quota || !exp.Equal(wantExp) {
						t.Errorf("%s: rate %v burst %d (stored %d) quota %d expires %v; want %v %d %d %v",
							what, v.RateLimit, effectiveBurst(v), v.Burst, v.MonthlyQuota, exp, c.rate, c.burst, c.quota, wantExp)
					}
				}
				var rot view.RotatedKeyView
				testkit.MustJSON(t, s.call("POST", "/v1/keys/"+target.ID+"/rotate", callerKey, `{"grace":"1h"}`), 201, &rot)
				check("rotated", rot.KeyView)
				stored, err := s.store.Get(t.Context(), rot.ID)
				if err != nil {
					t.Fatal(err)
				}
				check("stored", view.Of(stored, t0, s.cfg.DefaultScopes))
				s.clock.Advance(10 * time.Second) // a full bucket again
				var created view.NewKeyView
				testkit.MustJSON(t, s.call("POST", "/v1/keys", callerKey, `{"name":"n","scopes":["things:check"]}`), 201, &created)
				if cv := view.Of(caller, t0, s.cfg.DefaultScopes); created.RateLimit != cv.RateLimit || effectiveBurst(created.KeyView) != effectiveBurst(cv) || created.MonthlyQuota != cv.MonthlyQuota ||
					(created.ExpiresAt == nil) != caller.ExpiresAt.IsZero() {
					t.Errorf("created = %+v, want the caller's limits and expiry %+v", created.KeyView, caller)
				}
			})
		}
	})
}

// TestKeysRevokeNeedsTargetScopes checks that revoking, like rotating, needs
// every scope of the target key, and that the audit entry names the actor.
func TestKeysRevokeNeedsTargetScopes(t *testing.T) {
	forEachKeysServer(t, func(t *testing.T, s *server) {
		onlyManage, om := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys} })
		_, broad := s.mint(t, "acme", manage)
		_, defaults := s.mint(t, "acme")
		for _, target := range []store.Key{broad, defaults} {
			for _, c := range []struct{ method, path, body string }{
				{"DELETE", "/v1/keys/" + target.ID, ""},
				{"POST", "/v1/keys/" + target.ID + "/rotate", `{"grace":"1h"}`},
			} {
				p := testkit.WantProblem(t, s.call(c.method, c.path, onlyManage, c.body), 403, "insufficient_scope")
				if p.Scope != scopeThings {
					t.Errorf("%s %s: scope %q, want things:check", c.method, c.path, p.Scope)
				}
			}
			if got, _ := s.store.Get(t.Context(), target.ID); got.Status(s.clock.Now()) != store.StatusActive || !got.ExpiresAt.IsZero() {
				t.Errorf("a keys:manage-only key changed a broader key: %+v", got)
			}
		}
		narrowKey, narrow := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings} })
		_, thingsKey := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
		if w := s.call("DELETE", "/v1/keys/"+thingsKey.ID, narrowKey, ""); w.Code != 204 {
			t.Fatalf("revoking a narrower key = %d %s", w.Code, w.Body)
		}
		if w := s.call("DELETE", "/v1/keys/"+om.ID, onlyManage, ""); w.Code != 204 {
			t.Fatalf("self-revoke = %d %s", w.Code, w.Body)
		}
		logs := s.logs.String()
		for _, want := range []string{`"actor_key_id":"` + narrow.ID + `","target_key_id":"` + thingsKey.ID + `"`,
			`"actor_key_id":"` + om.ID + `","target_key_id":"` + om.ID + `"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("no audit entry with %s:\n%s", want, logs)
			}
		}
	})
}

// TestKeysNamesRefuseFormatCharacters checks that a name with a Unicode
// format character (bidi override, zero-width space) is refused like one
// with a control character.
func TestKeysNamesRefuseFormatCharacters(t *testing.T) {
	s := newServer(t, nil)
	key, _ := s.mint(t, "acme", manage)
	for _, name := range []string{"invoice\u202Etxt.exe", "a\u200Bb", "\uFEFFbom", "a\u0007"} {
		body, _ := json.Marshal(map[string]string{"name": name})
		p := testkit.WantProblem(t, s.call("POST", "/v1/keys", key, string(body)), 400, "invalid_name")
		if len(p.Errors) != 1 || !strings.HasPrefix(p.Errors[0], "name: ") {
			t.Errorf("%q: errors = %q", name, p.Errors)
		}
	}
}

// TestKeysBoundedEchoes sends a huge value to every place that quotes client
// input back, and checks that the answer stays small.
func TestKeysBoundedEchoes(t *testing.T) {
	s := newServer(t, nil)
	key, k := s.mint(t, "acme", manage)
	big := strings.Repeat("x", 60_000) // a body stays under 64 KiB
	huge := strings.Repeat("y", 500_000)
	cases := []struct {
		name, method, path, body string
		status                   int
	}{
		{"long scope", "POST", "/v1/keys", `{"name":"a","scopes":["` + big + `"]}`, 400},
		{"long scope:action", "POST", "/v1/keys", `{"name":"a","scopes":["a:` + big + `"]}`, 400},
		{"malformed long scope", "POST", "/v1/keys", `{"name":"a","scopes":["A` + big + `"]}`, 400},
		{"long name", "POST", "/v1/keys", `{"name":"` + big + `"}`, 400},
		{"expires_in", "POST", "/v1/keys", `{"name":"a","expires_in":"` + big + `"}`, 400},
		{"unknown field", "POST", "/v1/keys", `{"` + big + `":1}`, 400},
		{"big number", "POST", "/v1/keys", `{"name":1` + strings.Repeat("0", 60_000) + `}`, 400},
		{"syntax", "POST", "/v1/keys", `{"name":"a",` + big + `}`, 400},
		{"grace", "POST", "/v1/keys/" + k.ID + "/rotate", `{"grace":"` + big + `"}`, 400},
		{"limit", "GET", "/v1/keys?limit=" + huge, "", 400},
		{"page_token", "GET", "/v1/keys?page_token=" + huge, "", 400},
		{"id", "GET", "/v1/keys/" + huge, "", 404},
		{"id to rotate", "POST", "/v1/keys/" + huge + "/rotate", "", 404},
		// The fixture routes with a bare ServeMux: the function's own 404
		// and 405 answers (package keygate's Handler) are tested there.
		{"path", "GET", "/" + huge, "", 404},
		{"method", strings.Repeat("M", 100_000), "/v1/keys", "", 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := s.call(c.method, c.path, key, c.body)
			if w.Code != c.status || w.Body.Len() > 1024 {
				t.Errorf("status %d (want %d), body of %d bytes: %.300s", w.Code, c.status, w.Body.Len(), w.Body)
			}
			for name, vals := range w.Header() {
				for _, v := range vals {
					if len(v) > 1024 {
						t.Errorf("header %s of %d bytes", name, len(v))
					}
				}
			}
		})
	}
}

// TestKeysDurationBounds checks expires_in and grace at their bounds: an
// expiry is at least 1s, so that no key is born expired.
func TestKeysDurationBounds(t *testing.T) {
	s := newServer(t, nil)
	key, _ := s.mint(t, "acme", manage)
	for _, c := range []struct {
		expiresIn string
		ok        bool
	}{
		{"1ns", false}, {"999ms", false}, {"0s", false}, {"1s", true}, {"87600h", true}, {"87600h1s", false},
	} {
		w := s.call("POST", "/v1/keys", key, `{"name":"a","expires_in":"`+c.expiresIn+`"}`)
		if c.ok && w.Code != 201 || !c.ok && (w.Code != 400 || testkit.Problem(t, w).Code != "invalid_expires_in") {
			t.Errorf("expires_in %s: %d %s", c.expiresIn, w.Code, w.Body)
		}
	}
	for _, c := range []struct {
		grace string
		ok    bool
	}{
		{"-1s", false}, {"721h", false}, {"0s", true}, {"720h", true},
	} {
		_, target := s.mint(t, "acme")
		w := s.call("POST", "/v1/keys/"+target.ID+"/rotate", key, `{"grace":"`+c.grace+`"}`)
		if c.ok && w.Code != 201 || !c.ok && (w.Code != 400 || testkit.Problem(t, w).Code != "invalid_grace") {
			t.Errorf("grace %s: %d %s", c.grace, w.Code, w.Body)
		}
	}
}
