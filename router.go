package keygate

import (
	"net/http"
	"strings"
)

// route is one endpoint: a method, a net/http ServeMux path pattern, the
// scope a key needs for it ("" for none) and the handler.
type route struct {
	method  string
	path    string
	scope   string
	handler http.HandlerFunc
}

// newRouter returns a handler that serves routes, each behind auth's check
// of its scope, and answers every other request with a problem: 405 with
// Allow for a known path, 404 otherwise.
func newRouter(auth *Authenticator, routes []route) http.Handler {
	mux := http.NewServeMux()
	allow := make(map[string][]string)
	var paths []string
	for _, rt := range routes {
		mux.Handle(rt.method+" "+rt.path, auth.requireScope(rt.scope, rt.handler))
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
		writeProblem(w, newProblem(http.StatusNotFound, "not_found", "There is no endpoint at "+quoteShort(r.URL.Path)+"."))
	})
	return mux
}

// methodNotAllowed answers 405 with the allowed methods.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeProblem(w, newProblem(http.StatusMethodNotAllowed, "method_not_allowed",
			quoteShort(r.Method)+" is not allowed here; use "+allow+"."))
	}
}
