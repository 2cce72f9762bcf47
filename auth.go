package keygate

import (
	"net/http"
	"slices"
	"strings"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/apidocs"
	"github.com/keygate/keygate/apikey/console"
	"github.com/keygate/keygate/bingo"
	"github.com/keygate/keygate/internal/problem"
)

// The function's scopes. Each route needs at most one.
const (
	// ScopeBingoCheck allows POST /v1/bingo/check.
	ScopeBingoCheck = "bingo:check"
	// ScopeUsageRead allows reading the key's own usage.
	ScopeUsageRead = "usage:read"
	// ScopeKeysManage allows the owner's key-management endpoints.
	ScopeKeysManage = "keys:manage"
)

// DefaultScopes are the scopes of a key stored without any, unless
// KEY_DEFAULT_SCOPES says otherwise.
const DefaultScopes = ScopeBingoCheck + "," + ScopeUsageRead

// route is one endpoint: a method, a ServeMux path pattern, the scope a key
// needs for it ("" for none), the handler, and whether it is management
// (the key endpoints: the owner's management budget, not counted; see
// apikey.Gate.Manage).
type route struct {
	method, path, scope string
	handler             http.Handler
	manage              bool
}

// SecretScanningPath is where the function receives GitHub's secret
// scanning reports (apikey.Gate.GitHubSecretScanningHandler).
const SecretScanningPath = "/v1/secret-scanning/github"

// ConsolePath is where the function serves the key holders' web console
// (package console): the page at /console, its files under /console/.
const ConsolePath = "/console"

// DocsPath is where the function serves its API reference (package
// apidocs): the page at /docs, from the OpenAPI document at SpecPath, its
// files under /docs/.
const DocsPath = "/docs"

// SpecPath is where the function serves its OpenAPI document.
const SpecPath = "/openapi.json"

// Handler returns the function's endpoints behind g. Routing comes after
// the key check, so that only callers with a valid key learn which paths
// exist: they get 405 with Allow for a known path and a wrong method, and
// 404 for any other path, neither counted. The one exception is the web
// console, ConsolePath and the paths under it: a public page that holds no
// secret, served before the key check, since its visitors have not signed
// in yet; the API reference, DocsPath and the paths under it, public for
// the same reason; and SecretScanningPath, where GitHub posts the keys it found in
// public code, which sends no key: its signature authenticates it.
func Handler(g *apikey.Gate) http.Handler {
	keys := g.KeysHandlers()
	routes := []route{
		{http.MethodGet, "/{$}", "", http.HandlerFunc(hello), false},
		{http.MethodPost, "/v1/bingo/check", ScopeBingoCheck, http.HandlerFunc(bingo.Check), false},
		{http.MethodPost, "/v1/keys", ScopeKeysManage, keys.Create, true},
		{http.MethodGet, "/v1/keys", ScopeKeysManage, keys.List, true},
		{http.MethodGet, "/v1/keys/{id}", ScopeKeysManage, keys.Get, true},
		{http.MethodDelete, "/v1/keys/{id}", ScopeKeysManage, keys.Revoke, true},
		{http.MethodPost, "/v1/keys/{id}/rotate", ScopeKeysManage, keys.Rotate, true},
		{http.MethodGet, "/v1/keys/{id}/usage", ScopeKeysManage, keys.KeyUsage, true},
		{http.MethodGet, "/v1/usage", ScopeUsageRead, keys.Usage, true},
		{http.MethodGet, "/v1/whoami", "", keys.WhoAmI, true},
	}
	mux := http.NewServeMux()
	allow := make(map[string][]string)
	var paths, scopes []string
	for _, rt := range routes {
		if rt.scope != "" && !slices.Contains(scopes, rt.scope) {
			scopes = append(scopes, rt.scope)
		}
		mount := g.Protect
		if rt.manage {
			mount = g.Manage
		}
		mux.Handle(rt.method+" "+rt.path, mount(rt.scope, rt.handler))
		if allow[rt.path] == nil {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		if rt.method == http.MethodGet { // ServeMux serves HEAD with GET
			allow[rt.path] = append(allow[rt.path], http.MethodHead)
		}
	}
	for _, p := range paths {
		mux.Handle(p, methodNotAllowed(strings.Join(allow[p], ", ")))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The path is the client's: shortened, so that it cannot bloat the answer.
		problem.Write(w, problem.New(http.StatusNotFound, apikey.CodeNotFound, "There is no endpoint at "+problem.QuoteShort(r.URL.Path)+"."))
	})
	api := g.Authenticate(mux)
	cons := console.Handler(console.Config{Path: ConsolePath, KeysPath: "/v1/keys", UsagePath: "/v1/usage",
		WhoAmIPath: "/v1/whoami", Header: g.Config().Header, Scopes: scopes})
	docs := apidocs.Handler(apidocs.Config{Path: DocsPath, SpecURL: SpecPath, Title: "keygate API"})
	scanning := g.GitHubSecretScanningHandler()
	// Not a ServeMux: it would answer unclean paths (//v1/keys) with a
	// redirect before the key check.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == SecretScanningPath {
			scanning.ServeHTTP(w, r)
			return
		}
		if p := r.URL.Path; p == ConsolePath || strings.HasPrefix(p, ConsolePath+"/") {
			cons.ServeHTTP(w, r)
			return
		}
		if p := r.URL.Path; p == DocsPath || strings.HasPrefix(p, DocsPath+"/") {
			docs.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// methodNotAllowed answers 405 with the allowed methods.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		problem.Write(w, problem.New(http.StatusMethodNotAllowed, apikey.CodeMethodNotAllowed,
			problem.QuoteShort(r.Method)+" is not allowed here; use "+allow+"."))
	}
}

// hello answers GET / with {"message":"Hello World"}: the simplest proof
// that a key works.
func hello(w http.ResponseWriter, r *http.Request) {
	problem.WriteJSON(w, http.StatusOK, struct {
		Message string `json:"message"`
	}{"Hello World"})
}
