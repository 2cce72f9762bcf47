package apikeytest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/apikeytest"
)

// listThings stands for the handler a test protects.
func listThings(w http.ResponseWriter, r *http.Request) {
	key, _ := apikey.FromContext(r.Context())
	json.NewEncoder(w).Encode(map[string]any{"owner": key.Owner})
}

// TestThings is the package doc's example, as it is written there.
func TestThings(t *testing.T) {
	g := apikeytest.New(t)
	h := g.Protect("things:read", http.HandlerFunc(listThings))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", g.Mint(t, "acme", "things:read"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

func serve(h http.Handler, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/", nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestMintedKeys: a minted key is refused like any other key it should
// be: without the scope, expired, of another Gate.
func TestMintedKeys(t *testing.T) {
	g := apikeytest.New(t)
	h := g.Protect("things:read", http.HandlerFunc(listThings))
	other := apikeytest.New(t)
	cases := []struct {
		name, key string
		want      int
	}{
		{"with the scope", g.Mint(t, "acme", "things:read"), 200},
		{"with the scope among others", g.Mint(t, "acme", "a:b", "things:read"), 200},
		{"without the scope", g.Mint(t, "acme", "other:read"), 403},
		{"no scopes: the default scopes", g.Mint(t, "acme"), 403},
		{"expired", g.MintKey(t, apikey.Key{Owner: "acme", Scopes: []string{"things:read"}, ExpiresAt: time.Now().Add(-time.Hour)}), 401},
		{"of another Gate's store", other.Mint(t, "acme", "things:read"), 401},
		{"no key", "", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if w := serve(h, c.key); w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
		})
	}
	if w := serve(h, g.Mint(t, "acme", "things:read")); !strings.Contains(w.Body.String(), `"owner":"acme"`) {
		t.Errorf("the handler did not find the key's owner: %s", w.Body)
	}
}

// TestDefaultScopes: NewConfig's Config is the Gate's: a key minted
// without scopes grants its DefaultScopes.
func TestDefaultScopes(t *testing.T) {
	cfg := apikey.DefaultConfig()
	cfg.DefaultScopes = []string{"things:read"}
	g := apikeytest.NewConfig(t, cfg)
	if w := serve(g.Protect("things:read", http.HandlerFunc(listThings)), g.Mint(t, "acme")); w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// TestClosedAtCleanup: the Gate is closed when its test ends, so that it
// leaves no goroutine behind: it then refuses what it would count.
func TestClosedAtCleanup(t *testing.T) {
	var g *apikeytest.Gate
	var key string
	t.Run("inner", func(t *testing.T) {
		g = apikeytest.New(t)
		key = g.Mint(t, "acme", "things:read")
	})
	w := serve(g.Protect("things:read", http.HandlerFunc(listThings)), key)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "shutting_down") {
		t.Fatalf("after its test, the Gate answered %d %s, want 503 shutting_down", w.Code, w.Body)
	}
}

// TestLogs: the Gate's logs are discarded unless the test asks for them;
// asked, they never hold the key.
func TestLogs(t *testing.T) {
	var buf bytes.Buffer
	g := apikeytest.New(t, apikey.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	key := g.Mint(t, "acme", "other:read")
	serve(g.Protect("things:read", http.HandlerFunc(listThings)), key)
	if !strings.Contains(buf.String(), "insufficient_scope") {
		t.Errorf("the logger asked for got no entry of the refusal: %q", buf.String())
	}
	if strings.Contains(buf.String(), key) {
		t.Error("the log holds the key")
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestDocShowsTestThings: the package doc's example is TestThings, line for
// line, so that it compiles and passes.
func TestDocShowsTestThings(t *testing.T) {
	doc, err := os.ReadFile("apikeytest.go")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("apikeytest_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, example, _ := strings.Cut(string(doc), "//\tfunc TestThings")
	example, _, _ = strings.Cut(example, "//\n")
	lines := strings.Split(strings.TrimSpace(example), "\n")
	if len(lines) < 10 {
		t.Fatalf("the package doc shows no TestThings: %q", example)
	}
	for _, l := range lines[1:] {
		if code := strings.TrimPrefix(l, "//\t"); !strings.Contains(string(src), code+"\n") {
			t.Errorf("TestThings has no line %q, which the package doc shows", code)
		}
	}
}
