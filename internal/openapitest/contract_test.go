package openapitest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// standIn is the contract of testdata/standin.json, its unrouted answers
// 401, 404 and 405 (with Allow).
func standIn(t *testing.T) *Contract {
	t.Helper()
	doc, err := os.ReadFile("testdata/standin.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(doc, Options{Unrouted: map[int]string{
		401: "#/components/responses/Problem",
		404: "#/components/responses/Problem",
		405: "#/components/responses/MethodNotAllowed",
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// answer is a handler that answers status with headers and body.
func answer(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

const (
	jsonType    = "application/json"
	problemType = "application/problem+json"
	aProblem    = `{"type":"tag:x","title":"Not Found","status":404,"code":"not_found"}`
)

// TestMismatches: each exchange that breaks the document is reported once,
// saying what broke, and each that keeps it is not reported.
func TestMismatches(t *testing.T) {
	c := standIn(t)
	ok := answer(200, `{"name":"a","count":3}`, "Content-Type", jsonType, "RateLimit", "limit=10")
	for _, tc := range []struct {
		name, method, target, body string
		h                          http.Handler
		want                       string // "" for no mismatch
	}{
		{"as documented", "GET", "/counts/a?limit=5", "", ok, ""},
		{"HEAD as GET without a body", "HEAD", "/counts/a", "", answer(200, "", "Content-Type", jsonType, "RateLimit", "limit=10"), ""},
		{"a number as a string", "GET", "/counts/a", "", answer(200, `{"name":"a","count":"3"}`, "Content-Type", jsonType, "RateLimit", "x"), "got string, want integer"},
		{"an undocumented member", "GET", "/counts/a", "", answer(200, `{"name":"a","count":3,"x":1}`, "Content-Type", jsonType, "RateLimit", "x"), "additional properties 'x' not allowed"},
		{"an undocumented status", "GET", "/counts/a", "", answer(500, aProblem, "Content-Type", problemType), "500"},
		{"a required header missing", "GET", "/counts/a", "", answer(200, `{"name":"a","count":3}`, "Content-Type", jsonType), "RateLimit"},
		{"another content type", "GET", "/counts/a", "", answer(200, `{"name":"a","count":3}`, "Content-Type", "text/plain", "RateLimit", "x"), "text/plain"},
		{"a code not in the enum", "GET", "/counts/a", "", answer(401, strings.Replace(aProblem, "not_found", "nope", 1), "Content-Type", problemType), "nope"},
		{"a sniffed body", "GET", "/counts/a", "", answer(200, `{"name":"a","count":3}`, "RateLimit", "x"), "text/plain"},
		{"a malformed query refused", "GET", "/counts/a?limit=0", "", answer(400, aProblem, "Content-Type", problemType), ""},
		{"a malformed query accepted", "GET", "/counts/a?limit=0", "", ok, "malformed, yet it was not refused"},
		{"a malformed body refused", "PUT", "/counts/a", `{"name":"a","count":-1}`, answer(400, aProblem, "Content-Type", problemType), ""},
		{"a malformed body accepted", "PUT", "/counts/a", `{"name":"a","count":-1}`, answer(204, ""), "malformed, yet it was not refused"},
		{"a body as documented", "PUT", "/counts/a", `{"name":"a","count":1}`, answer(204, ""), ""},
		{"an unknown path, 404", "GET", "/nope", "", answer(404, aProblem, "Content-Type", problemType), ""},
		{"an unclean path, 404", "GET", "//counts/a", "", answer(404, aProblem, "Content-Type", problemType), ""},
		{"a trailing slash, 404", "GET", "/counts/a/", "", answer(404, aProblem, "Content-Type", problemType), ""},
		{"an unclean path, 200", "GET", "/counts/./a", "", ok, "200"},
		{"an unknown path, 200", "GET", "/nope", "", ok, "200"},
		{"another method, 405 with Allow", "DELETE", "/counts/a", "", answer(405, aProblem, "Content-Type", problemType, "Allow", "GET, PUT"), ""},
		{"another method, 405 without Allow", "DELETE", "/counts/a", "", answer(405, aProblem, "Content-Type", problemType), "Allow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &Recorder{}
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.body != "" {
				r.Header.Set("Content-Type", jsonType)
			}
			w := httptest.NewRecorder()
			c.Handler(rec, tc.h).ServeHTTP(w, r)
			switch {
			case tc.want == "" && len(rec.Errors()) > 0:
				t.Errorf("reported %q, want nothing", rec.Errors())
			case tc.want != "" && (len(rec.Errors()) != 1 || !strings.Contains(rec.Errors()[0], tc.want)):
				t.Errorf("reported %q, want one report saying %q", rec.Errors(), tc.want)
			}
			for _, e := range rec.Errors() {
				if !strings.Contains(e, tc.method+" "+tc.target+" answered ") {
					t.Errorf("report %q does not name the request and its status", e)
				}
			}
		})
	}
}

// TestHandlerPassesAnswerOn: the client gets the handler's answer and the
// handler the request's body, unchanged by the check.
func TestHandlerPassesAnswerOn(t *testing.T) {
	c := standIn(t)
	var got string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 100)
		n, _ := r.Body.Read(buf)
		got = string(buf[:n])
		w.Header().Set("Allow", "GET")
		w.WriteHeader(204)
	})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("PUT", "/counts/a", strings.NewReader(`{"name":"a","count":1}`))
	r.Header.Set("Content-Type", jsonType)
	c.Handler(t, h).ServeHTTP(w, r)
	if got != `{"name":"a","count":1}` || w.Code != 204 || w.Header().Get("Allow") != "GET" {
		t.Errorf("handler read %q; client got %d Allow %q", got, w.Code, w.Header().Get("Allow"))
	}
}

// TestNewRefusesInvalidDocument: a document that is not valid OpenAPI is
// an error, not a contract that passes everything.
func TestNewRefusesInvalidDocument(t *testing.T) {
	for _, doc := range []string{`{"openapi":"3.1.0"}`, `{"openapi":"3.1.0","info":{"title":"x","version":"0"},"paths":{"/a":{"get":{"responses":{"200":{"content":{}}}}}}}`, `not json`} {
		if _, err := New([]byte(doc), Options{}); err == nil {
			t.Errorf("New(%s) = nil error", doc)
		}
	}
}
