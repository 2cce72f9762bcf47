package keygate

import (
	"bytes"
	"cmp"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/internal/openapitest"
	"github.com/keygate/keygate/internal/testkit"
)

// Every test of the function sends its requests through checked: each
// request and its answer are checked against the function's OpenAPI
// document (package openapitest), so that a test that passes also proves
// the document right. TestEveryHandlerChecked sees that no test builds the
// function's handler but through the helpers that call checked.

// contracts holds the contract of the function's document for each key
// header, built once per test binary: building one compiles every schema.
var contracts sync.Map // header -> func() (*openapitest.Contract, error)

// unroutedAnswers are the answers a request of no operation may get, as
// the document describes them: refused before routing (GET /'s refusals,
// which every keyed operation shares), or, with a valid key, 404 or 405.
var unroutedAnswers = map[int]string{
	400: "#/paths/~1/get/responses/400",
	401: "#/paths/~1/get/responses/401",
	404: "#/components/responses/NotFound",
	405: "#/components/responses/MethodNotAllowed",
	429: "#/paths/~1/get/responses/429",
	500: "#/paths/~1/get/responses/500",
	503: "#/paths/~1/get/responses/503",
}

// checked returns h, the function's handler configured by vars, behind
// its OpenAPI document: each mismatch fails t.
func checked(t testing.TB, vars map[string]string, h http.Handler) http.Handler {
	t.Helper()
	return contract(t, vars).Handler(t, h)
}

// contract is the contract of the function's document, configured by
// vars.
func contract(t testing.TB, vars map[string]string) *openapitest.Contract {
	t.Helper()
	header := cmp.Or(vars["API_KEY_HEADER"], "X-API-Key")
	build, _ := contracts.LoadOrStore(header, sync.OnceValues(func() (*openapitest.Contract, error) {
		doc, err := Document(header)
		if err != nil {
			return nil, err
		}
		return openapitest.New(doc, openapitest.Options{Unrouted: unroutedAnswers})
	}))
	c, err := build.(func() (*openapitest.Contract, error))()
	if err != nil {
		t.Fatalf("the function's OpenAPI document: %v", err)
	}
	return c
}

// checkedHelpers are the only functions of the function's tests that may
// build its handler (Handler, newAPI): each passes it through checked.
// TestTerminateChild and TestFleetChild serve a child process's real
// traffic for a signal, the benchmarks measure the handler itself; TestContractFindsWrongAnswers
// spoils its answers under the check, and TestGeneratedRequests reports
// each case's mismatches to that case.
var checkedHelpers = []string{"newTestAPI", "newTestFunction", "newRoutes", "newFleet", "TestTerminateChild", "TestFleetChild", "helloVariants", "BenchmarkFleetGet", "TestContractFindsWrongAnswers", "TestGeneratedRequests"}

// TestEveryHandlerChecked: no test of the function calls Handler or newAPI
// but checkedHelpers, so none bypasses the document's checks.
func TestEveryHandlerChecked(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if id, ok := call.Fun.(*ast.Ident); ok && (id.Name == "Handler" || id.Name == "newAPI") {
					found++
					if !slices.Contains(checkedHelpers, fn.Name.Name) {
						t.Errorf("%s: %s calls %s: build the function's handler with newRoutes, newTestFunction, newTestAPI or newFleet, which check its traffic against the OpenAPI document", fset.Position(call.Pos()), fn.Name.Name, id.Name)
					}
				}
				return true
			})
		}
	}
	if found < 3 {
		t.Errorf("found %d calls of Handler or newAPI, want at least the helpers' 3: is this test still looking?", found)
	}
}

// TestContractFindsWrongAnswers: the check of the function's tests fails a
// test whose answer breaks the document by one field's type, one required
// header, or its status, and passes the same answer unspoilt.
func TestContractFindsWrongAnswers(t *testing.T) {
	for _, c := range []struct {
		name  string
		spoil func(w *httptest.ResponseRecorder)
		want  []string // in the one report
	}{
		{"unspoilt", func(*httptest.ResponseRecorder) {}, nil},
		{"a number as a string", func(w *httptest.ResponseRecorder) {
			b := regexp.MustCompile(`"month_total":(\d+)`).ReplaceAll(w.Body.Bytes(), []byte(`"month_total":"$1"`))
			w.Body = bytes.NewBuffer(b)
		}, []string{"month_total", "got string, want integer"}},
		{"a required header dropped", func(w *httptest.ResponseRecorder) { w.Header().Del("Vary") }, []string{"Missing required header", "Vary"}},
		{"an undocumented status", func(w *httptest.ResponseRecorder) { w.Code = http.StatusAccepted }, []string{"202"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, s := newGateOn(t, nil, testkit.NewFakeClock())
			key, _ := testkit.MintKey(t, s, "acme")
			h := Handler(g)
			spoilt := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				c.spoil(rec)
				maps.Copy(w.Header(), rec.Header())
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
			})
			rep := &openapitest.Recorder{}
			w := serve(contract(t, nil).Handler(rep, spoilt), "GET", "/v1/usage", "", key)
			if c.want == nil {
				if w.Code != 200 || len(rep.Errors()) > 0 {
					t.Errorf("GET /v1/usage = %d, reported %q; want 200 and nothing", w.Code, rep.Errors())
				}
				return
			}
			if len(rep.Errors()) != 1 {
				t.Fatalf("reported %q, want one report", rep.Errors())
			}
			for _, want := range append(c.want, "GET /v1/usage answered ") {
				if !strings.Contains(rep.Errors()[0], want) {
					t.Errorf("the report does not say %q: %s", want, rep.Errors()[0])
				}
			}
		})
	}
}
