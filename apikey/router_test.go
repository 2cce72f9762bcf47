package apikey_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/apikeytest"
)

// chiRoutes mounts a data endpoint and the key endpoints on chi, as
// docs/api.md shows ("Mounting on a router").
func chiRoutes(gate *apikey.Gate, things http.Handler) http.Handler {
	keys := gate.KeysHandlers()
	manage := gate.RequireManage("keys:manage")
	r := chi.NewRouter()
	r.With(gate.Require("things:read")).Method("GET", "/things", things)
	r.Route("/v1/keys", func(r chi.Router) {
		r.With(manage).Post("/", keys.Create.ServeHTTP)
		r.With(manage).Get("/", keys.List.ServeHTTP)
		r.With(manage).Get("/{id}", keys.Get.ServeHTTP)
		r.With(manage).Delete("/{id}", keys.Revoke.ServeHTTP)
		r.With(manage).Post("/{id}/rotate", keys.Rotate.ServeHTTP)
		r.With(manage).Get("/{id}/usage", keys.KeyUsage.ServeHTTP)
	})
	return r
}

// TestKeysOnChi: the key endpoints, mounted on chi with RequireManage and
// chi's Get, which wraps them in a HandlerFunc, find the
// key ID in chi's {id}: get, usage, rotate and revoke act on the key named
// in the path; Require refuses a key without the scope.
func TestKeysOnChi(t *testing.T) {
	g := apikeytest.New(t)
	things := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("things\n")) })
	h := chiRoutes(g.Gate, things)
	admin := g.Mint(t, "acme", "keys:manage", "things:read")
	do := func(method, path, key, body string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("X-API-Key", key)
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	want := func(w *httptest.ResponseRecorder, code int) {
		t.Helper()
		if w.Code != code {
			t.Fatalf("status %d, want %d: %s", w.Code, code, w.Body)
		}
	}
	want(do("GET", "/things", admin, ""), 200)
	want(do("GET", "/things", g.Mint(t, "acme", "other:read"), ""), 403)
	want(do("GET", "/v1/keys/", g.Mint(t, "acme", "things:read"), ""), 403)

	w := do("POST", "/v1/keys/", admin, `{"name":"tablet","scopes":["things:read"]}`)
	want(w, 201)
	var created struct{ ID, Key string }
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil || created.ID == "" {
		t.Fatalf("POST /v1/keys/: %v %s", err, w.Body)
	}
	want(do("GET", "/things", created.Key, ""), 200)

	w = do("GET", "/v1/keys/"+created.ID, admin, "")
	want(w, 200)
	if !strings.Contains(w.Body.String(), `"name":"tablet"`) {
		t.Errorf("GET /v1/keys/{id} showed %s, not the key named tablet", w.Body)
	}
	want(do("GET", "/v1/keys/"+created.ID+"/usage", admin, ""), 200)
	want(do("GET", "/v1/keys/"+strings.Repeat("0", 64), admin, ""), 404)

	w = do("POST", "/v1/keys/"+created.ID+"/rotate", admin, `{"grace":"0s"}`)
	want(w, 201)
	var rotated struct{ Key string }
	json.Unmarshal(w.Body.Bytes(), &rotated)
	want(do("GET", "/things", rotated.Key, ""), 200)
	want(do("GET", "/things", created.Key, ""), 401)

	want(do("DELETE", "/v1/keys/"+created.ID, admin, ""), 204)
	w = do("GET", "/v1/keys/", admin, "")
	want(w, 200)
	if !strings.Contains(w.Body.String(), `"revoked_at"`) {
		t.Errorf("after DELETE, the list shows no revoked key: %s", w.Body)
	}
}

// TestKeyEndpointWithoutID: a key endpoint on a route that sets no "id"
// (a router that does not set path values, with no adapter) is answered
// 500 misconfigured, never 404 for a key that exists.
func TestKeyEndpointWithoutID(t *testing.T) {
	g := apikeytest.New(t)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/keys/", g.Require("keys:manage")(g.KeysHandlers().Get))
	r := httptest.NewRequest("GET", "/v1/keys/abc", nil)
	r.Header.Set("X-API-Key", g.Mint(t, "acme", "keys:manage"))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != 500 || !strings.Contains(w.Body.String(), "misconfigured") {
		t.Fatalf("status %d %s, want 500 misconfigured", w.Code, w.Body)
	}
}

// TestDocsShowChiRoutes: the chi block of docs/api.md is chiRoutes, line
// for line.
func TestDocsShowChiRoutes(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("router_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```go\nkeys := gate.KeysHandlers()\nmanage :=")
	block, _, _ = strings.Cut(block, "```")
	if !ok {
		t.Fatal("docs/api.md shows no chi routes")
	}
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		if !strings.Contains(string(src), line) {
			t.Errorf("chiRoutes has no line %q, which docs/api.md shows", line)
		}
	}
}
