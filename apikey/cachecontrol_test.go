package apikey

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// TestCacheControl: every answer of the key and usage endpoints, errors
// and the Gate's refusals included, says Cache-Control: no-store (they
// carry new keys, key lists, usage); every refusal does; and every response
// the Gate lets through varies on the key header, so that a cache never
// gives one key's response to another request, while the data plane's
// handler (GET /) keeps deciding its own Cache-Control.
func TestCacheControl(t *testing.T) {
	s := newServer(t, nil)
	admin, adminK := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeUsage, scopeThings} })
	plain, _ := s.mint(t, "acme")
	_, other := s.mint(t, "globex")
	_, victim := s.mint(t, "acme")
	_, rotated := s.mint(t, "acme")
	for _, c := range []struct {
		name, method, path, key, body string
		status                        int
		noStore, vary                 bool
	}{
		{"GET / (the data plane)", "GET", "/", plain, "", 200, false, true},
		{"GET / without a key", "GET", "/", "", "", 401, true, false},
		{"create", "POST", "/v1/keys", admin, `{"name":"n"}`, 201, true, true},
		{"create, bad body", "POST", "/v1/keys", admin, `{"nope":1}`, 400, true, true},
		{"list", "GET", "/v1/keys", admin, "", 200, true, true},
		{"list, bad page token", "GET", "/v1/keys?page_token=nope", admin, "", 400, true, true},
		{"get another owner's key", "GET", "/v1/keys/" + other.ID, admin, "", 404, true, true},
		{"get", "GET", "/v1/keys/" + adminK.ID, admin, "", 200, true, true},
		{"key usage, bad date", "GET", "/v1/keys/" + adminK.ID + "/usage?from=bad", admin, "", 400, true, true},
		{"key usage", "GET", "/v1/keys/" + adminK.ID + "/usage", admin, "", 200, true, true},
		{"usage", "GET", "/v1/usage", admin, "", 200, true, true},
		{"whoami", "GET", "/v1/whoami", admin, "", 200, true, true},
		{"rotate", "POST", "/v1/keys/" + rotated.ID + "/rotate", admin, "", 201, true, true},
		{"revoke", "DELETE", "/v1/keys/" + victim.ID, admin, "", 204, true, true},
		{"list without the scope (Authenticate let it through)", "GET", "/v1/keys", plain, "", 403, true, true},
		{"list without a key", "GET", "/v1/keys", "", "", 401, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := s.call(c.method, c.path, c.key, c.body)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if got, want := w.Header().Get("Cache-Control"), map[bool]string{true: "no-store"}[c.noStore]; got != want {
				t.Errorf("Cache-Control %q, want %q", got, want)
			}
			if got, want := w.Header().Values("Vary"), map[bool][]string{true: {"X-Api-Key"}}[c.vary]; !slices.Equal(got, want) {
				t.Errorf("Vary %q, want %q", got, want)
			}
		})
	}
	t.Run("store down", func(t *testing.T) {
		s.store.Down.Store(true)
		defer s.store.Down.Store(false)
		w := s.call("GET", "/v1/whoami", admin, "")
		testkit.WantProblem(t, w, 503, "store_unavailable")
		if got := w.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", got)
		}
	})
	t.Run("a Vary of the handler's own and of a middleware before the Gate", func(t *testing.T) {
		h := func(before string) http.Handler {
			inner := s.Protect("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("Vary", "Accept-Encoding")
			}))
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if before != "" {
					w.Header().Set("Vary", before)
				}
				inner.ServeHTTP(w, r)
			})
		}
		for range 2 { // the Gate's own Vary is not changed by the handler's Add
			for _, c := range []struct {
				before string
				want   []string
			}{{"", []string{"X-Api-Key", "Accept-Encoding"}}, {"Origin", []string{"Origin", "X-Api-Key", "Accept-Encoding"}}} {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("X-API-Key", plain)
				w := httptest.NewRecorder()
				h(c.before).ServeHTTP(w, r)
				if got := w.Header().Values("Vary"); !slices.Equal(got, c.want) {
					t.Errorf("Vary %q, want %q", got, c.want)
				}
			}
		}
	})
}
