package apikey

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// TestKeysApplicationScopes checks that scopes belong to the application:
// through the keys API, a key may be given any well-formed scope its caller
// holds, even one the Gate has never seen, and that scope then passes
// Protect. A well-formed scope the caller lacks is a 403, as for any scope;
// only a malformed one is a 400.
func TestKeysApplicationScopes(t *testing.T) {
	s := newServer(t, nil)
	caller, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys, "things:read", "billing.v2:export-all"} })
	create := func(t *testing.T, scopes ...string) *httptest.ResponseRecorder {
		t.Helper()
		body, err := json.Marshal(map[string]any{"name": "app", "scopes": scopes})
		if err != nil {
			t.Fatal(err)
		}
		return s.call("POST", "/v1/keys", caller, string(body))
	}

	t.Run("held", func(t *testing.T) {
		var got view.NewKeyView
		testkit.MustJSON(t, create(t, "things:read", "billing.v2:export-all"), 201, &got)
		if !slices.Equal(got.Scopes, []string{"things:read", "billing.v2:export-all"}) {
			t.Errorf("scopes = %q", got.Scopes)
		}
		stored, err := s.store.Get(t.Context(), got.ID)
		if err != nil || !slices.Equal(stored.Scopes, got.Scopes) {
			t.Errorf("stored = %+v, %v", stored, err)
		}
		// The new key passes the application's own routes with that scope,
		// and no others.
		for scope, want := range map[string]int{"things:read": 200, "billing.v2:export-all": 200, "things:write": 403, scopeKeys: 403} {
			r := httptest.NewRequest("GET", "/things", nil)
			r.Header.Set("X-API-Key", got.Key)
			w := httptest.NewRecorder()
			s.Protect(scope, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).ServeHTTP(w, r)
			if w.Code != want {
				t.Errorf("Protect(%q) = %d, want %d; body %s", scope, w.Code, want, w.Body)
			}
		}
	})

	for _, scope := range []string{"things:write", "admin:all", "things", scopeThings} {
		t.Run("not held "+scope, func(t *testing.T) {
			p := testkit.WantProblem(t, create(t, "things:read", scope), 403, "insufficient_scope")
			if p.Scope != scope {
				t.Errorf("scope = %q, want %q", p.Scope, scope)
			}
		})
	}

	var many []string
	for i := range keyrules.MaxScopes + 1 {
		many = append(many, fmt.Sprintf("s%d", i))
	}
	for _, c := range []struct {
		name   string
		scopes []string
	}{
		{"upper case", []string{"Things:Read"}},
		{"space", []string{"things read"}},
		{"empty word", []string{"things::read"}},
		{"leading colon", []string{":things"}},
		{"trailing colon", []string{"things:"}},
		{"word starting with a dot", []string{"things:.read"}},
		{"empty", []string{""}},
		{"not ASCII", []string{"thïngs:read"}},
		{"too long", []string{strings.Repeat("a", keyrules.MaxScopeLen+1)}},
		{"repeated", []string{"things:read", "things:read"}},
		{"too many", many},
		// Malformed wins over not held: the caller learns what to fix.
		{"malformed after a missing one", []string{"things:write", "Bad"}},
	} {
		t.Run("malformed "+c.name, func(t *testing.T) {
			p := testkit.WantProblem(t, create(t, c.scopes...), 400, "invalid_scopes")
			if len(p.Errors) != 1 || !strings.HasPrefix(p.Errors[0], "scopes: ") {
				t.Errorf("errors = %q, want one on scopes", p.Errors)
			}
		})
	}
}

// TestKeysDefaultScopesAreTheApplications checks Config.DefaultScopes with
// scopes of the application's: a key stored without scopes grants them, is
// shown with them, and a key created without naming scopes gets them, if
// its caller holds them.
func TestKeysDefaultScopesAreTheApplications(t *testing.T) {
	s := newServer(t, nil, func(c *Config) { c.DefaultScopes = []string{"things:read"} })
	plainKey, plain := s.mint(t, "acme") // no scopes of its own
	manager, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys, "things:read"} })
	narrow, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys} })

	var v view.KeyView
	testkit.MustJSON(t, s.call("GET", "/v1/keys/"+plain.ID, manager, ""), 200, &v)
	if !slices.Equal(v.Scopes, []string{"things:read"}) {
		t.Errorf("a key without scopes is shown with %q, want the defaults", v.Scopes)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for scope, want := range map[string]int{"things:read": 200, scopeThings: 403} {
		r := httptest.NewRequest("GET", "/things", nil)
		r.Header.Set("X-API-Key", plainKey)
		w := httptest.NewRecorder()
		s.Protect(scope, ok).ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("a key without scopes on Protect(%q) = %d, want %d", scope, w.Code, want)
		}
	}

	var created view.NewKeyView
	testkit.MustJSON(t, s.call("POST", "/v1/keys", manager, `{"name":"d"}`), 201, &created)
	if !slices.Equal(created.Scopes, []string{"things:read"}) {
		t.Errorf("created without scopes: %q, want the defaults", created.Scopes)
	}
	p := testkit.WantProblem(t, s.call("POST", "/v1/keys", narrow, `{"name":"d"}`), 403, "insufficient_scope")
	if p.Scope != "things:read" {
		t.Errorf("scope = %q, want the default the caller lacks", p.Scope)
	}
}
