package keygate

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/apidocs"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// The function's own routes, Handler(g), with the real bingo handler. The
// Gate's key check, refusals and logs are tested in package apikey.

// newRoutes returns the function's routes behind a Gate on a memory store,
// configured by vars as the function is by its environment (nil: the
// defaults, the function's default scopes), on the fake clock, their
// traffic checked against the OpenAPI document (checked); the Gate is
// closed when the test ends.
func newRoutes(t *testing.T, vars map[string]string) (http.Handler, *memstore.Store) {
	t.Helper()
	g, s := newGateOn(t, vars, testkit.NewFakeClock())
	return checked(t, vars, Handler(g)), s
}

// newGateOn is newRoutes's Gate and store, on clock.
func newGateOn(t *testing.T, vars map[string]string, clock *testkit.FakeClock) (*apikey.Gate, *memstore.Store) {
	t.Helper()
	cfg, err := LoadConfig(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	s := memstore.New()
	log, _ := testkit.Logger()
	g := apikey.New(cfg, s, apikey.WithClock(clock.Now), apikey.WithLogger(log))
	t.Cleanup(func() {
		if err := g.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return g, s
}

// serve serves one request with key ("" for none).
func serve(h http.Handler, method, target, body, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestRoutingAfterAuth(t *testing.T) {
	h, s := newRoutes(t, nil)
	key, _ := testkit.MintKey(t, s, "acme")
	cases := []struct {
		name, method, target string
		key                  bool
		wantStatus           int
		wantCode, wantAllow  string
	}{
		{"unknown path without key", "GET", "/nope", false, 401, "missing_api_key", ""},
		{"wrong method without key", "DELETE", "/", false, 401, "missing_api_key", ""},
		{"unknown path", "GET", "/nope", true, 404, "not_found", ""},
		{"unclean path", "GET", "//v1/whoami", true, 404, "not_found", ""}, // not ServeMux's redirect
		{"dot segment", "GET", "/v1/./whoami", true, 404, "not_found", ""},
		{"wrong method", "DELETE", "/", true, 405, "method_not_allowed", "GET, HEAD"},
		{"HEAD", "HEAD", "/", true, 200, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := ""
			if c.key {
				k = key
			}
			w := serve(h, c.method, c.target, "", k)
			if w.Code != c.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, c.wantStatus)
			}
			if c.wantCode != "" {
				if p := testkit.Problem(t, w); p.Code != c.wantCode {
					t.Errorf("code = %s, want %s", p.Code, c.wantCode)
				}
			}
			if got := w.Header().Get("Allow"); got != c.wantAllow {
				t.Errorf("Allow = %q, want %q", got, c.wantAllow)
			}
		})
	}
	if w := serve(h, "GET", "/", "", key); w.Code != 200 || w.Body.String() != `{"message":"Hello World"}`+"\n" {
		t.Errorf("GET / = %d %s, want 200 Hello World", w.Code, w.Body)
	}
}

// bingoWinRequest is a request whose card wins row 2 and column 2.
const bingoWinRequest = `{"card":[[7,19,38,52,71],[3,24,41,49,66],[12,17,0,57,62],[1,28,33,60,74],[14,22,44,47,69]],"called":[12,57,17,62,38,41,33,44,5]}`

func TestBingoBehindAuthAndScope(t *testing.T) {
	h, s := newRoutes(t, nil)
	plain, _ := testkit.MintKey(t, s, "acme") // default scopes: bingo:check
	manager, _ := testkit.MintKey(t, s, "acme", func(k *store.Key) { k.Scopes = []string{ScopeKeysManage} })
	if w := serve(h, "POST", "/v1/bingo/check", bingoWinRequest, ""); w.Code != 401 {
		t.Errorf("no key = %d, want 401", w.Code)
	}
	w := serve(h, "POST", "/v1/bingo/check", bingoWinRequest, manager)
	if w.Code != 403 || testkit.Problem(t, w).Scope != ScopeBingoCheck {
		t.Errorf("key without bingo:check = %d %s, want 403 naming bingo:check", w.Code, w.Body)
	}
	w = serve(h, "POST", "/v1/bingo/check", bingoWinRequest, plain)
	if w.Code != 200 || !strings.HasPrefix(w.Body.String(), `{"bingo":true,"wins":[{"pattern":"line","kind":"row","index":2},{"pattern":"line","kind":"column","index":2}]`) {
		t.Errorf("bingo = %d %s", w.Code, w.Body)
	}
	if w := serve(h, "GET", "/v1/bingo/check", "", plain); w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET = %d Allow %q, want 405 Allow POST", w.Code, w.Header().Get("Allow"))
	}
}

// TestConsoleBeforeKeyCheck: the web console's page and files are served
// without a key, under the strict headers, and tell the page the key
// header the function reads; every other path is still refused 401 before
// routing, and 404 only with a key.
func TestConsoleBeforeKeyCheck(t *testing.T) {
	h, s := newRoutes(t, map[string]string{"API_KEY_HEADER": "X-Bingo-Key"})
	key, _ := testkit.MintKey(t, s, "acme")
	do := func(method, target, key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		if key != "" {
			r.Header.Set("X-Bingo-Key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := do("GET", "/console", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /console without a key = %d %q, want 200 HTML", w.Code, w.Header().Get("Content-Type"))
	}
	if got := w.Header().Get("Content-Security-Policy"); got != "default-src 'self'; frame-ancestors 'none'" {
		t.Errorf("Content-Security-Policy = %q", got)
	}
	for _, want := range []string{`data-key-header="X-Bingo-Key"`, `data-keys-path="/v1/keys"`, `data-usage-path="/v1/usage"`, `data-whoami-path="/v1/whoami"`,
		"this service's scopes are <code>bingo:check</code>, <code>keys:manage</code>, <code>usage:read</code>."} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("the console page lacks %s", want)
		}
	}
	if w := do("GET", "/console/console.js", ""); w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /console/console.js = %d %q, want 200 JavaScript", w.Code, w.Header().Get("Content-Type"))
	}
	if w := do("GET", "/console/nope", ""); w.Code != 404 || w.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("GET /console/nope = %d, want the console's 404", w.Code)
	}
	// The page's forms post to it when its script does not run: back to the
	// page, with nothing in the address.
	if w := do("POST", "/console", ""); w.Code != 303 || w.Header().Get("Location") != "/console" {
		t.Errorf("POST /console = %d Location %q, want 303 to /console", w.Code, w.Header().Get("Location"))
	}
	if w := do("DELETE", "/console", ""); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE /console = %d Allow %q, want 405 GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
	for _, path := range []string{"/consolex", "/v1/console", "/nope", "//console", "/v1/keys"} {
		if w := do("GET", path, ""); w.Code != 401 || testkit.Problem(t, w).Code != "missing_api_key" {
			t.Errorf("GET %s without a key = %d %s, want 401 missing_api_key", path, w.Code, w.Body)
		}
	}
	if w := do("GET", "/consolex", key); w.Code != 404 || w.Header().Get("Content-Security-Policy") != "" {
		t.Errorf("GET /consolex with a key = %d, want the function's 404", w.Code)
	}
	if w := do("GET", "/", key); w.Code != 200 {
		t.Errorf("GET / with a key = %d, want 200", w.Code)
	}
}

// TestDocsBeforeKeyCheck: the API reference is served without a key, under
// its own policy, beside the key check; paths like it are the function's.
func TestDocsBeforeKeyCheck(t *testing.T) {
	h, s := newRoutes(t, nil)
	key, _ := testkit.MintKey(t, s, "acme")
	w := serve(h, "GET", "/docs", "", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(w.Body.String(), `data-spec-url="/openapi.json"`) {
		t.Fatalf("GET /docs without a key = %d %q, want 200 HTML on /openapi.json:\n%s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	if got := w.Header().Get("Content-Security-Policy"); got != apidocs.ContentSecurityPolicy {
		t.Errorf("Content-Security-Policy = %q", got)
	}
	if w := serve(h, "HEAD", "/docs/swagger-ui-"+apidocs.Version+"/swagger-ui-bundle.js", "", ""); w.Code != 200 || w.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("HEAD of Swagger UI's bundle = %d, Cache-Control %q", w.Code, w.Header().Get("Cache-Control"))
	}
	if w := serve(h, "GET", "/docs/nope", "", ""); w.Code != 404 || w.Header().Get("Content-Security-Policy") != apidocs.ContentSecurityPolicy {
		t.Errorf("GET /docs/nope = %d, want the page's 404", w.Code)
	}
	if w := serve(h, "POST", "/docs", "", ""); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /docs = %d Allow %q, want 405 GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
	for _, path := range []string{"/docsx", "/v1/docs", "//docs"} {
		if w := serve(h, "GET", path, "", ""); w.Code != 401 || testkit.Problem(t, w).Code != "missing_api_key" {
			t.Errorf("GET %s without a key = %d %s, want 401 missing_api_key", path, w.Code, w.Body)
		}
		if w := serve(h, "GET", path, "", key); w.Code != 404 || w.Header().Get("Content-Security-Policy") != "" {
			t.Errorf("GET %s with a key = %d, want the function's 404", path, w.Code)
		}
	}
}

// TestDocsFilesDocumented: every file the document lists under /docs is
// served, and the renderer it names is the one embedded (upgrading Swagger
// UI means changing openapi_operations.json too).
func TestDocsFilesDocumented(t *testing.T) {
	h, _ := newRoutes(t, nil)
	raw, err := Document("X-API-Key")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]struct {
			Get struct {
				Parameters []struct {
					Name   string
					Schema struct{ Enum []string }
				}
			}
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	enum := func(path, name string) []string {
		for _, p := range doc.Paths[path].Get.Parameters {
			if p.Name == name {
				return p.Schema.Enum
			}
		}
		t.Fatalf("%s has no parameter %s", path, name)
		return nil
	}
	if got := enum("/docs/{renderer}/{file}", "renderer"); !slices.Equal(got, []string{"swagger-ui-" + apidocs.Version}) {
		t.Errorf("the document's renderer is %q, the embedded one swagger-ui-%s", got, apidocs.Version)
	}
	var paths []string
	for _, f := range enum("/docs/{file}", "file") {
		paths = append(paths, "/docs/"+f)
	}
	for _, f := range enum("/docs/{renderer}/{file}", "file") {
		paths = append(paths, "/docs/swagger-ui-"+apidocs.Version+"/"+f)
	}
	for _, p := range paths {
		r := httptest.NewRequest("GET", p, nil)
		r.Header.Set("Accept-Encoding", "gzip") // as browsers do
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Errorf("GET %s = %d, want 200", p, w.Code)
		}
	}
}
