package keygate

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/apidocs"
	"github.com/keygate/keygate/apikey/openapi"
)

// OpenAPIPath is where the function serves its OpenAPI 3.1 document:
// public, before the key check, since it holds no secret.
const OpenAPIPath = "/openapi.json"

// DocsPath is where the function serves the document as a reference page.
const DocsPath = "/docs"

// operationsJSON is the function's own part of its document: its info, the
// codes and schemas of its own handlers, and an operation for each of its
// routes but the key endpoints (package openapi has those) and for each
// public operation.
//
//go:embed openapi_operations.json
var operationsJSON []byte

// publicOperations are the documented operations served before the key
// check (Handler).
var publicOperations = []string{
	"GET " + ConsolePath, "POST " + ConsolePath, "GET " + ConsolePath + "/{file}",
	"POST " + SecretScanningPath,
	"GET " + OpenAPIPath, "HEAD " + OpenAPIPath,
	"GET " + DocsPath, "GET " + DocsPath + "/{file}", "GET " + DocsPath + "/swagger-ui-" + apidocs.Version + "/{file}",
}

// Document returns the function's OpenAPI document, for keys in header
// (apikey.Config.Header).
func Document(header string) ([]byte, error) {
	return document(routes(apikey.KeysHandlers{}), header)
}

// openAPIHandler serves the document of rts, built once, by the first
// request for it: building it takes milliseconds that a cold start need not
// spend. It cannot fail but for a document that its tests refuse.
func openAPIHandler(rts []route, header string) http.Handler {
	serve := sync.OnceValue(func() http.Handler {
		spec, err := document(rts, header)
		if err != nil {
			panic("keygate: " + err.Error()) // cannot happen: TestOpenAPIDocument
		}
		return openapi.Serve(spec)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve().ServeHTTP(w, r) })
}

// document composes the document of the routes rts: each route with its
// scope, a route without an operation an error, as an operation without a
// route.
func document(rts []route, header string) ([]byte, error) {
	var own struct {
		Info       openapi.Info               `json:"info"`
		Codes      []openapi.Code             `json:"codes"`
		Schemas    map[string]json.RawMessage `json:"schemas"`
		Operations map[string]json.RawMessage `json:"operations"`
	}
	if err := json.Unmarshal(operationsJSON, &own); err != nil {
		return nil, fmt.Errorf("openapi_operations.json: %w", err)
	}
	d := openapi.New(own.Info, header)
	for _, c := range own.Codes {
		d.AddCode(c)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(own.Schemas)) {
		errs = append(errs, d.AddSchema(name, own.Schemas[name]))
	}
	used := make(map[string]bool)
	add := func(key string, g openapi.Guard) {
		method, path, _ := strings.Cut(key, " ")
		op, ok := own.Operations[key]
		if !ok {
			errs = append(errs, fmt.Errorf("openapi_operations.json: no operation for %s", key))
			return
		}
		used[key] = true
		errs = append(errs, d.Add(method, path, g, op))
	}
	for _, rt := range rts {
		path := strings.TrimSuffix(rt.path, "{$}") // ServeMux's end of path: OpenAPI's paths are exact
		if rt.endpoint != "" {
			if m := rt.endpoint.Method(); m != rt.method {
				errs = append(errs, fmt.Errorf("route %s %s: the endpoint %s is %s", rt.method, path, rt.endpoint, m))
			}
			errs = append(errs, d.AddEndpoint(rt.endpoint, path, rt.scope))
			continue
		}
		add(rt.method+" "+path, openapi.Protect(rt.scope))
	}
	for _, key := range publicOperations {
		add(key, openapi.Public)
	}
	for key := range own.Operations {
		if !used[key] {
			errs = append(errs, fmt.Errorf("openapi_operations.json: %s is neither a route nor a public operation", key))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d.JSON()
}
