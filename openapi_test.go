package keygate

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/openapi"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/openapicheck"
	"github.com/keygate/keygate/internal/readme"
	"github.com/keygate/keygate/internal/testkit"
)

// specOf is the function's document for keys in header, and decoded.
func specOf(t *testing.T, header string) ([]byte, map[string]any) {
	t.Helper()
	raw, err := Document(header)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	return raw, spec
}

// at is the object at the path of keys in m, or nil.
func at(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m, _ = m[k].(map[string]any)
	}
	return m
}

// TestOpenAPIDocument checks that the function's document is valid OpenAPI
// 3.1 with examples that match their schemas, and that it holds every route
// of auth.go, each with its scope, and every public operation, and nothing
// else.
func TestOpenAPIDocument(t *testing.T) {
	raw, spec := specOf(t, "X-API-Key")
	openapicheck.Check(t, raw)
	want := map[string]string{} // "METHOD path": scope, "-" for public
	for _, rt := range routes(apikey.KeysHandlers{}) {
		want[rt.method+" "+strings.TrimSuffix(rt.path, "{$}")] = rt.scope
	}
	for _, op := range publicOperations {
		want[op] = "-"
	}
	got := map[string]string{}
	for path, item := range at(spec, "paths") {
		for method, o := range item.(map[string]any) {
			op := o.(map[string]any)
			key := strings.ToUpper(method) + " " + path
			scope, _ := op["x-keygate-scope"].(string)
			security := op["security"].([]any)
			desc, _ := op["description"].(string)
			switch {
			case len(security) == 0:
				scope = "-"
				if !strings.HasPrefix(desc, "Public") {
					t.Errorf("%s: public, but its description does not say so: %.40q", key, desc)
				}
			case !reflect.DeepEqual(security, []any{map[string]any{"apiKey": scopesOf(scope)}}):
				t.Errorf("%s: security %v, want the scope %q", key, security, scope)
			case scope != "" && !strings.Contains(desc, "`"+scope+"`"):
				t.Errorf("%s: the description does not name the scope %s: %.60q", key, scope, desc)
			}
			got[key] = scope
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("operations and scopes\n%v\nwant auth.go's\n%v", got, want)
	}
	// The function's own codes are in the enum with the library's.
	for _, code := range []string{"invalid_card", "invalid_called", "invalid_pattern", "missing_api_key", "key_not_found"} {
		if !strings.Contains(string(raw), `"`+code+`"`) {
			t.Errorf("the document lacks the code %s", code)
		}
	}
}

// scopesOf is a security requirement's scopes for scope.
func scopesOf(scope string) []any {
	if scope == "" {
		return []any{}
	}
	return []any{scope}
}

// TestOpenAPIDocumentRefusesUndescribedRoutes checks that a route added to
// auth.go's table without an operation in openapi_operations.json makes
// the document fail, as does an endpoint under another method.
func TestOpenAPIDocumentRefusesUndescribedRoutes(t *testing.T) {
	rts := append(routes(apikey.KeysHandlers{}), route{method: http.MethodGet, path: "/v1/new", scope: "new:read"})
	if _, err := document(rts, "X-API-Key"); err == nil || !strings.Contains(err.Error(), "GET /v1/new") {
		t.Errorf("a route without an operation: %v", err)
	}
	rts = append(routes(apikey.KeysHandlers{}), route{method: http.MethodPut, path: "/v1/keys/{id}/x", scope: ScopeKeysManage, endpoint: openapi.Get})
	if _, err := document(rts, "X-API-Key"); err == nil {
		t.Error("an endpoint under another method was accepted")
	}
}

// TestOpenAPIServed checks GET /openapi.json: public, before the key check
// (no key, a bad key), cacheable with an ETag, for the configured header.
func TestOpenAPIServed(t *testing.T) {
	h, _ := newRoutes(t, map[string]string{"API_KEY_HEADER": "X-Bingo-Key"})
	want, _ := Document("X-Bingo-Key")
	for _, key := range []string{"", "kg_not-a-key"} {
		r, _ := http.NewRequest("GET", OpenAPIPath, nil)
		r.Header.Set("X-Bingo-Key", key)
		w := serveRequest(h, r)
		if w.Code != 200 || w.Body.String() != string(want) {
			t.Fatalf("GET %s with key %q: %d %.80s", OpenAPIPath, key, w.Code, w.Body)
		}
		if w.Header().Get("Cache-Control") != openapi.CacheControl || w.Header().Get("ETag") == "" || w.Header().Get("Vary") != "" {
			t.Errorf("headers %v", w.Header())
		}
		if strings.Contains(w.Body.String(), `"X-API-Key"`) {
			t.Error("the document for X-Bingo-Key names X-API-Key")
		}
		r.Header.Set("If-None-Match", w.Header().Get("ETag"))
		if w := serveRequest(h, r); w.Code != http.StatusNotModified {
			t.Errorf("If-None-Match: %d", w.Code)
		}
	}
	r, _ := http.NewRequest("HEAD", OpenAPIPath, nil)
	if w := serveRequest(h, r); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
}

// serveRequest serves r.
func serveRequest(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestOpenAPIExamplesAreReal checks that the examples of the problems are
// what the function answers: each request below gets its code's example,
// to the byte once decoded.
func TestOpenAPIExamplesAreReal(t *testing.T) {
	h, s := newRoutes(t, nil)
	key, _ := testkit.MintKey(t, s, "acme") // the default scopes
	admin, _ := testkit.MintKey(t, s, "acme", func(k *store.Key) { k.Scopes = []string{ScopeKeysManage, ScopeBingoCheck, ScopeUsageRead} })
	_, spec := specOf(t, "X-API-Key")
	unknownID := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		code, method, target, body, key string
	}{
		{"missing_api_key", "GET", "/", "", ""},
		{"invalid_api_key", "GET", "/", "", "kg_not-a-key"},
		{"insufficient_scope", "GET", "/v1/keys", "", key},
		{"not_found", "GET", "/v2", "", key},
		{"key_not_found", "GET", "/v1/keys/" + unknownID, "", admin},
		{"invalid_limit", "GET", "/v1/keys?limit=0", "", admin},
		{"invalid_page_token", "GET", "/v1/keys?page_token=x", "", admin},
		{"invalid_date", "GET", "/v1/usage?from=yesterday", "", admin},
		{"invalid_json", "POST", "/v1/keys", `{"owner":"x"}`, admin},
		{"invalid_name", "POST", "/v1/keys", `{"name":"` + strings.Repeat("n", 101) + `"}`, admin},
		{"invalid_scopes", "POST", "/v1/keys", `{"scopes":["Bingo"]}`, admin},
		{"invalid_expires_in", "POST", "/v1/keys", `{"expires_in":"1y"}`, admin},
	} {
		w := serve(h, tc.method, tc.target, tc.body, tc.key)
		var got any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.target, err)
			continue
		}
		if want := at(spec, "components", "examples", tc.code)["value"]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s: %d\n%s\nwant the example of %s\n%v", tc.method, tc.target, w.Code, w.Body, tc.code, want)
		}
	}
}

// TestAPIDocListsEveryCode checks that docs/api.md's table of response
// codes names every code of the document, and no other.
func TestAPIDocListsEveryCode(t *testing.T) {
	sec := readme.Section(t, "docs/api.md", "Response codes")
	listed := map[string]bool{}
	for line := range strings.Lines(sec) {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| Status") {
			continue
		}
		for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(cells[2], -1) {
			listed[m[1]] = true
		}
	}
	_, spec := specOf(t, "X-API-Key")
	for _, c := range at(spec, "components", "schemas", "Code")["enum"].([]any) {
		if !listed[c.(string)] {
			t.Errorf("docs/api.md's response codes lack %s", c)
		}
		delete(listed, c.(string))
	}
	for c := range listed {
		t.Errorf("docs/api.md lists %s, which the document does not", c)
	}
}
