package openapi_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/openapi"
	"github.com/keygate/keygate/internal/openapicheck"
)

// keysDoc is the document of the KeysHandlers mounted as docs/api.md
// mounts them, under keys, with an operation of the application's own.
func keysDoc(t *testing.T, header, keys string) []byte {
	t.Helper()
	d := openapi.New(openapi.Info{Title: "things", Version: "1"}, header)
	if err := d.AddKeys(openapi.KeysPaths{Keys: keys, Scope: "keys:manage",
		UsagePath: "/v1/usage", UsageScope: "usage:read", WhoAmIPath: "/v1/whoami"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Add("GET", "/things", openapi.Protect("things:read"), []byte(`{
		"summary": "The caller's things",
		"responses": {"200": {"description": "Things.", "content": {"text/plain": {"schema": {"type": "string"}}}}}
	}`)); err != nil {
		t.Fatal(err)
	}
	spec, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestDocumentValid checks that the library's document, mounted as the
// README shows, is valid OpenAPI 3.1 and that its examples match their
// schemas, for each kind of key header.
func TestDocumentValid(t *testing.T) {
	for _, header := range []string{"X-API-Key", "X-Things-Key", "Authorization"} {
		t.Run(header, func(t *testing.T) {
			openapicheck.Check(t, keysDoc(t, header, "/v1/keys"))
		})
	}
}

// decode is spec as JSON objects.
func decode(t *testing.T, spec []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(spec, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// obj is the object at the path of keys in m.
func obj(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m, _ = m[k].(map[string]any)
	}
	return m
}

// TestMountedWhereTheUserSays checks that the operations are at the paths
// where the user mounts KeysHandlers, each with the scope of its mount.
func TestMountedWhereTheUserSays(t *testing.T) {
	doc := decode(t, keysDoc(t, "X-API-Key", "/api/keys"))
	want := map[string]string{
		"post /api/keys": "keys:manage", "get /api/keys": "keys:manage",
		"get /api/keys/{id}": "keys:manage", "delete /api/keys/{id}": "keys:manage",
		"post /api/keys/{id}/rotate": "keys:manage", "get /api/keys/{id}/usage": "keys:manage",
		"get /v1/usage": "usage:read", "get /v1/whoami": "", "get /things": "things:read",
	}
	got := map[string]string{}
	for path, item := range obj(doc, "paths") {
		for method, op := range item.(map[string]any) {
			scope, _ := op.(map[string]any)["x-keygate-scope"].(string)
			got[method+" "+path] = scope
			sec := op.(map[string]any)["security"].([]any)
			if scopes := sec[0].(map[string]any)["apiKey"].([]any); scope != "" && (len(scopes) != 1 || scopes[0] != scope) {
				t.Errorf("%s %s: security %v, want the scope %s", method, path, sec, scope)
			}
		}
	}
	for k, scope := range want {
		if s, ok := got[k]; !ok || s != scope {
			t.Errorf("%s: scope %q (there: %v), want %q", k, s, ok, scope)
		}
	}
	if len(got) != len(want) {
		t.Errorf("operations %v, want %v", got, want)
	}
}

// TestHeaderFromConfig checks that the document names the configured key
// header, and only it, and that Authorization is a bearer scheme.
func TestHeaderFromConfig(t *testing.T) {
	spec := keysDoc(t, "X-Things-Key", "/v1/keys")
	if strings.Contains(string(spec), "X-API-Key") {
		t.Error("the document for X-Things-Key names X-API-Key")
	}
	s := obj(decode(t, spec), "components", "securitySchemes", "apiKey")
	if s["type"] != "apiKey" || s["in"] != "header" || s["name"] != "X-Things-Key" {
		t.Errorf("scheme %v, want an apiKey in the header X-Things-Key", s)
	}
	s = obj(decode(t, keysDoc(t, "Authorization", "/v1/keys")), "components", "securitySchemes", "apiKey")
	if s["type"] != "http" || s["scheme"] != "bearer" {
		t.Errorf("scheme %v, want http bearer", s)
	}
}

// TestCodesMatchAPIKey checks that the Code enum holds every code of
// apikey/code.go and of internal/problem, and nothing else.
func TestCodesMatchAPIKey(t *testing.T) {
	var want []string
	for _, file := range []string{"../code.go", "../../internal/problem/problem.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok || !strings.HasPrefix(strings.ToLower(spec.Names[0].Name), "code") {
				return true
			}
			for _, v := range spec.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					if !slices.Contains(want, s) {
						want = append(want, s)
					}
				}
			}
			return true
		})
	}
	if len(want) < 30 {
		t.Fatalf("found only %d codes in code.go: %v", len(want), want)
	}
	var got []string
	for _, c := range obj(decode(t, keysDoc(t, "X-API-Key", "/v1/keys")), "components", "schemas", "Code")["enum"].([]any) {
		got = append(got, c.(string))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Code enum\n%v\nwant apikey's codes\n%v", got, want)
	}
}

// TestEveryResponseDescribed checks that each key operation describes the
// refusals of what stands before it, with their headers.
func TestEveryResponseDescribed(t *testing.T) {
	paths := obj(decode(t, keysDoc(t, "X-API-Key", "/v1/keys")), "paths")
	for _, tc := range []struct {
		method, path string
		statuses     []string
	}{
		{"post", "/v1/keys", []string{"201", "400", "401", "403", "409", "413", "415", "429", "500", "503"}},
		{"get", "/v1/keys", []string{"200", "400", "401", "403", "429", "500", "503"}},
		{"delete", "/v1/keys/{id}", []string{"204", "400", "401", "403", "404", "429", "500", "503"}},
		{"post", "/v1/keys/{id}/rotate", []string{"201", "400", "401", "403", "404", "409", "413", "415", "429", "500", "503"}},
		{"get", "/v1/whoami", []string{"200", "400", "401", "429", "500", "503"}},
		{"get", "/things", []string{"200", "400", "401", "403", "429", "500", "503"}},
	} {
		rs := obj(paths, tc.path, tc.method, "responses")
		var got []string
		for s := range rs {
			got = append(got, s)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.statuses) {
			t.Errorf("%s %s: responses %v, want %v", tc.method, tc.path, got, tc.statuses)
		}
		if h := obj(rs, "401", "headers", "WWW-Authenticate"); h["required"] != true {
			t.Errorf("%s %s: 401 without a required WWW-Authenticate: %v", tc.method, tc.path, h)
		}
		if h := obj(rs, "429", "headers", "Retry-After"); h["required"] != true {
			t.Errorf("%s %s: 429 without a required Retry-After: %v", tc.method, tc.path, h)
		}
		if h := obj(rs, "429", "headers", "RateLimit-Limit"); h == nil {
			t.Errorf("%s %s: 429 without RateLimit-Limit", tc.method, tc.path)
		}
	}
	if h := obj(paths, "/v1/keys", "post", "responses", "415", "headers", "Accept-Post"); h["required"] != true {
		t.Errorf("415 without a required Accept-Post: %v", h)
	}
	if h := obj(paths, "/v1/keys", "get", "responses", "200", "headers", "Cache-Control"); h["required"] != true {
		t.Errorf("a key endpoint's 200 without Cache-Control no-store: %v", h)
	}
}

// TestAddRefuses checks the mistakes Add refuses: an unknown code, an
// operation twice.
func TestAddRefuses(t *testing.T) {
	d := openapi.New(openapi.Info{Title: "t", Version: "1"}, "X-API-Key")
	op := []byte(`{"responses": {"200": {"description": "ok"}}, "x-keygate-codes": ["no_such_code"]}`)
	if err := d.Add("GET", "/x", openapi.Protect("x:read"), op); err == nil {
		t.Error("an unknown code was accepted")
	}
	d.AddCode(openapi.Code{Code: "no_such_code", Status: 400, When: "never", Detail: "Never."})
	if err := d.Add("GET", "/x", openapi.Protect("x:read"), op); err != nil {
		t.Errorf("a code added by AddCode: %v", err)
	}
	if err := d.Add("GET", "/x", openapi.Protect("x:read"), op); err == nil {
		t.Error("an operation added twice was accepted")
	}
}

// TestServe checks the handler: the document to GET, headers only to
// HEAD, 304 to If-None-Match with its ETag, 405 to other methods.
func TestServe(t *testing.T) {
	spec := keysDoc(t, "X-API-Key", "/v1/keys")
	h := openapi.Serve(spec)
	do := func(method string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/openapi.json", nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := do("GET")
	etag := w.Header().Get("ETag")
	if w.Code != 200 || w.Body.String() != string(spec) || etag == "" || w.Header().Get("Cache-Control") != openapi.CacheControl ||
		w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET: %d %v", w.Code, w.Header())
	}
	if w := do("HEAD"); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("ETag") != etag {
		t.Errorf("HEAD: %d, %d bytes, %v", w.Code, w.Body.Len(), w.Header())
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		if w := do("GET", "If-None-Match", inm); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Errorf("If-None-Match %s: %d", inm, w.Code)
		}
	}
	if w := do("GET", "If-None-Match", `"other"`); w.Code != 200 {
		t.Errorf("If-None-Match another: %d", w.Code)
	}
	if w := do("POST"); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", w.Code, w.Header())
	}
}

// TestRequiredHeaderReference checks that a header that refers to a
// component and says required is written whole, saying so: OpenAPI
// ignores a reference's other members.
func TestRequiredHeaderReference(t *testing.T) {
	h := obj(decode(t, keysDoc(t, "X-API-Key", "/v1/keys")), "paths", "/v1/keys", "post", "responses", "201", "headers", "Location")
	if h["required"] != true || h["$ref"] != nil || h["schema"] == nil {
		t.Errorf("Location of a 201: %v, want the header whole, required", h)
	}
}
