package openapi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/openapi"
)

// routes is the README's example: a function's own endpoint, the key
// holders' endpoints, and the document of both at /openapi.json.
func routes(gate *apikey.Gate) (http.Handler, error) {
	mux := http.NewServeMux()
	keys := gate.KeysHandlers()
	mux.Handle("GET /things", gate.Protect("things:read", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	mux.Handle("GET /v1/keys", gate.Manage("keys:manage", keys.List)) // and the others, as docs/api.md mounts them
	// README:begin
	doc := openapi.New(openapi.Info{Title: "things", Version: "1"}, gate.Config().Header)
	err := errors.Join(
		doc.AddKeys(openapi.KeysPaths{Keys: "/v1/keys", Scope: "keys:manage"}), // where you mounted KeysHandlers
		doc.Add("GET", "/things", openapi.Protect("things:read"), []byte(`{"summary": "Your things",
			"responses": {"200": {"description": "The things.", "content": {"text/plain": {}}}}}`)),
	)
	spec, _ := doc.Handler() // GET and HEAD, public, cacheable, with an ETag
	mux.Handle("GET /openapi.json", spec)
	// README:end
	return mux, err
}

func Example() {
	gate := apikey.New(apikey.DefaultConfig(), memstore.New(), apikey.WithLogger(slog.New(slog.DiscardHandler)))
	defer gate.Close(context.Background())
	h, err := routes(gate)
	if err != nil {
		fmt.Println(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/openapi.json", nil))
	fmt.Println(w.Code, w.Header().Get("Cache-Control"), strings.Contains(w.Body.String(), `"/v1/keys/{id}/rotate"`))
	// Output: 200 public, max-age=300 true
}

// TestREADMEShowsExample checks that the README's lines are the example's.
func TestREADMEShowsExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(src), "// README:begin\n")
	block, _, _ = strings.Cut(block, "\t// README:end")
	var n int
	for line := range strings.Lines(block) {
		if line = strings.TrimSpace(line); line != "" {
			n++
			if !strings.Contains(string(readme), line) {
				t.Errorf("the README lacks the example's line %q", line)
			}
		}
	}
	if n < 5 {
		t.Fatalf("the example has %d lines between its markers", n)
	}
}
