package keygate

import (
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/apidocs"
	"github.com/keygate/keygate/apikey/console"
	"github.com/keygate/keygate/apikey/openapi"
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
// needs for it ("" for none), the handler, and, for the key endpoints,
// which of KeysHandlers it is: management (the owner's management budget,
// not counted; see apikey.Gate.Manage), described by package openapi. The
// function's own routes are described in openapi_operations.json.
type route struct {
	method, path, scope string
	handler             http.Handler
	endpoint            openapi.Endpoint
}

// routes is the function's route table, with the key endpoints of keys.
func routes(keys apikey.KeysHandlers) []route {
	return []route{
		{http.MethodGet, "/{$}", "", http.HandlerFunc(hello), ""},
		{http.MethodPost, "/v1/bingo/check", ScopeBingoCheck, http.HandlerFunc(bingo.Check), ""},
		{http.MethodPost, "/v1/keys", ScopeKeysManage, keys.Create, openapi.Create},
		{http.MethodGet, "/v1/keys", ScopeKeysManage, keys.List, openapi.List},
		{http.MethodGet, "/v1/keys/{id}", ScopeKeysManage, keys.Get, openapi.Get},
		{http.MethodDelete, "/v1/keys/{id}", ScopeKeysManage, keys.Revoke, openapi.Revoke},
		{http.MethodPost, "/v1/keys/{id}/rotate", ScopeKeysManage, keys.Rotate, openapi.Rotate},
		{http.MethodGet, "/v1/keys/{id}/usage", ScopeKeysManage, keys.KeyUsage, openapi.KeyUsage},
		{http.MethodGet, "/v1/usage", ScopeUsageRead, keys.Usage, openapi.Usage},
		{http.MethodGet, "/v1/whoami", "", keys.WhoAmI, openapi.WhoAmI},
	}
}

// SecretScanningPath is where the function receives GitHub's secret
// scanning reports (apikey.Gate.GitHubSecretScanningHandler).
const SecretScanningPath = "/v1/secret-scanning/github"

// ConsolePath is where the function serves the key holders' web console
// (package console): the page at /console, its files under /console/.
const ConsolePath = "/console"

// Handler returns the function's endpoints behind g. Routing comes after
// the key check, so that only callers with a valid key learn which paths
// exist: they get 405 with Allow for a known path and a wrong method, and
// 404 for any other path, neither counted. The one exception is the web
// console, ConsolePath and the paths under it: a public page that holds no
// secret, served before the key check, since its visitors have not signed
// in yet; the API reference, DocsPath and the paths under it, public for
// the same reason; SecretScanningPath, where GitHub posts the keys it found
// in public code, which sends no key: its signature authenticates it; and
// OpenAPIPath, the document of all these, public as the console.
func Handler(g *apikey.Gate) http.Handler {
	rts := routes(g.KeysHandlers())
	mux := http.NewServeMux()
	allow := make(map[string][]string)
	var paths, scopes []string
	for _, rt := range rts {
		if rt.scope != "" && !slices.Contains(scopes, rt.scope) {
			scopes = append(scopes, rt.scope)
		}
		mount := g.Protect
		if rt.endpoint != "" {
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
	mux.HandleFunc("/", notFound)
	// ServeMux would redirect an unclean path (//v1/keys) to the clean one:
	// an answer of no operation; the path names no endpoint, as before the
	// key check.
	api := g.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p != "/" && (path.Clean(p) != p && path.Clean(p)+"/" != p) {
			notFound(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	cons := console.Handler(console.Config{Path: ConsolePath, KeysPath: "/v1/keys", UsagePath: "/v1/usage",
		WhoAmIPath: "/v1/whoami", Header: g.Config().Header, Scopes: scopes})
	docs := apidocs.Handler(apidocs.Config{Path: DocsPath, SpecURL: OpenAPIPath, Title: "keygate API"})
	scanning := g.GitHubSecretScanningHandler()
	spec := openAPIHandler(rts, g.Config().Header)
	// Not a ServeMux: it would answer unclean paths (//v1/keys) with a
	// redirect before the key check.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == SecretScanningPath {
			scanning.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == OpenAPIPath {
			spec.ServeHTTP(w, r)
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

// notFound answers 404: no endpoint at the request's path.
func notFound(w http.ResponseWriter, r *http.Request) {
	// The path is the client's: shortened, so that it cannot bloat the answer.
	problem.Write(w, problem.New(http.StatusNotFound, apikey.CodeNotFound, "There is no endpoint at "+problem.QuoteShort(r.URL.Path)+"."))
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
