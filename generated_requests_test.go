package keygate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/openapitest"
	"github.com/keygate/keygate/internal/testkit"
)

// TestGeneratedRequests drives the function, on a memory store, with
// requests drawn from its OpenAPI document (rapid: -rapid.checks cases, 100
// by default, of 1 to 3 requests each): each operation, its path and query
// parameters and its body drawn from their schemas, under a key of the
// case's owner with every scope or one, another owner's, a revoked, an
// unknown, a malformed, none or two; and mutations: malformed JSON,
// unknown, null, duplicate or mistyped members, trailing data, a body over
// 64 KiB, none or another content type, parameters of the wrong type or
// out of bounds, key IDs of another owner, a method of no operation, a
// signed secret scanning report. Every answer must be one the document
// describes (the contract reports to the case, which rapid then shrinks)
// and none a 5xx.
//
// rapid rather than testing/quick, whose generators know nothing of
// schemas and do not shrink, or Go fuzzing, which without -fuzz runs only
// its seeds: rapid draws structured values from the document, runs a
// bounded number of cases in every go test, and shrinks a failure to a
// small request.
func TestGeneratedRequests(t *testing.T) {
	doc, err := Document("X-API-Key")
	if err != nil {
		t.Fatal(err)
	}
	d, err := openapitest.Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	ops := d.Operations()
	gh := testkit.NewGitHub(t, "k1")
	vars := map[string]string{"GITHUB_SECRET_SCANNING_KEYS_URL": gh.URL}
	clock := testkit.NewFakeClock()
	g, s := newGateOn(t, vars, clock)
	h := Handler(g)
	c := contract(t, vars)
	cases := 0
	statuses := map[int]int{}
	rapid.Check(t, func(rt *rapid.T) {
		cases++
		owner := fmt.Sprintf("owner%d", cases)
		all := func(k *store.Key) { k.Scopes = []string{ScopeKeysManage, ScopeBingoCheck, ScopeUsageRead} }
		keys := map[string]string{"none": "", "malformed": "kg_notakey"}
		ids := []string{"nope", strings.Repeat("a", 64), "%2e%2e", strings.Repeat("é", 300)}
		for _, k := range []struct {
			name, owner string
			change      func(*store.Key)
		}{
			{"admin", owner, all},
			{"bingo only", owner, func(k *store.Key) { k.Scopes = []string{ScopeBingoCheck} }},
			{"usage only", owner, func(k *store.Key) { k.Scopes = []string{ScopeUsageRead} }},
			{"another owner's", owner + "-other", all},
			{"revoked", owner, func(k *store.Key) { all(k); k.RevokedAt = testkit.T0 }},
		} {
			key, stored := testkit.MintKey(t, s, k.owner, k.change)
			keys[k.name], ids = key, append(ids, stored.ID)
		}
		unknown, k, err := keyrules.Mint("kg", store.Key{Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		keys["unknown"], ids = unknown, append(ids, k.ID)
		names := []string{"admin", "admin", "admin", "bingo only", "usage only", "another owner's", "revoked", "unknown", "malformed", "none", "two"}

		for range rapid.IntRange(1, 3).Draw(rt, "requests") {
			op := rapid.SampledFrom(ops).Draw(rt, "operation")
			r, what := generatedRequest(rt, d, op, ids)
			switch name := rapid.SampledFrom(names).Draw(rt, "key"); name {
			case "none":
			case "two":
				r.Header.Add("X-API-Key", keys["admin"])
				r.Header.Add("X-API-Key", keys["bingo only"])
			default:
				r.Header.Set("X-API-Key", keys[name])
			}
			if op.Path == SecretScanningPath && rapid.Bool().Draw(rt, "signed") {
				body, _ := json.Marshal([]map[string]string{{"token": keys["admin"], "type": "keygate_api_key", "url": "https://github.com/o/r/blob/x/a.go", "source": "commit"}})
				r = httptest.NewRequest(http.MethodPost, SecretScanningPath, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Github-Public-Key-Identifier", "k1")
				r.Header.Set("Github-Public-Key-Signature", gh.Sign(t, "k1", body))
				what = "a signed report of the admin key"
			}
			w := httptest.NewRecorder()
			c.Handler(caseReporter{rt}, h).ServeHTTP(w, r)
			statuses[w.Code]++
			if w.Code >= 500 {
				rt.Errorf("%s %s (%s) = %d %s", r.Method, r.URL.RequestURI(), what, w.Code, w.Body)
			}
			clock.Advance(2 * time.Second) // the management budget refills
		}
	})
	t.Logf("%d cases, answers by status: %v", cases, statuses)
}

// caseReporter reports to a rapid case.
type caseReporter struct{ *rapid.T }

func (caseReporter) Helper() {}

// generatedRequest draws a request of op from d: its parameters (a key ID
// from ids for an {id}) and body from their schemas, and perhaps one
// mutation, which it names.
func generatedRequest(t *rapid.T, d *openapitest.Document, op openapitest.Operation, ids []string) (*http.Request, string) {
	what := "as drawn"
	path := op.Path
	q := url.Values{}
	for _, p := range op.Params {
		var v string
		switch {
		case p.In == "path" && p.Name == "id":
			v = rapid.SampledFrom(ids).Draw(t, "id")
		case p.In == "query" && !p.Required && !rapid.Bool().Draw(t, p.Name+"?"):
			continue
		default:
			v = fmt.Sprint(d.Value(t, p.Schema))
		}
		if p.In == "query" && rapid.IntRange(0, 5).Draw(t, p.Name+" mutated") == 0 {
			v = rapid.SampledFrom([]string{"x", "-1", "0", "1e999", "", strings.Repeat("9", 400)}).Draw(t, p.Name+" mutation")
			what = "query " + p.Name + "=" + v
		}
		if p.In == "path" {
			path = strings.ReplaceAll(path, "{"+p.Name+"}", url.PathEscape(v))
		} else {
			q.Set(p.Name, v)
		}
	}
	if rapid.IntRange(0, 9).Draw(t, "unknown query") == 0 {
		q.Set("zz", "1")
	}
	method := op.Method
	if rapid.IntRange(0, 14).Draw(t, "another method") == 0 {
		method = rapid.SampledFrom([]string{"PUT", "PATCH", "DELETE", "OPTIONS"}).Draw(t, "method")
		what = "method " + method
	}
	var body []byte
	contentType := ""
	if op.Body != nil {
		v := d.Value(t, op.Body)
		body, _ = json.Marshal(v)
		contentType = "application/json"
		m, isObject := v.(map[string]any)
		mutation := rapid.SampledFrom([]string{"none", "none", "none", "malformed", "unknown member", "mistyped member",
			"null member", "duplicate member", "trailing data", "oversize", "no content type", "text/plain", "empty"}).Draw(t, "mutation")
		if mutation != "none" {
			what = mutation
		}
		switch mutation {
		case "malformed":
			body = body[:len(body)/2]
		case "unknown member":
			if isObject {
				m["zz_unknown"] = true
				body, _ = json.Marshal(m)
			}
		case "mistyped member", "null member", "duplicate member":
			if !isObject || len(m) == 0 {
				break
			}
			name := slices.Min(slices.Collect(maps.Keys(m)))
			what += " " + name
			switch mutation {
			case "mistyped member":
				m[name] = mistyped(m[name])
			case "null member":
				m[name] = nil
			}
			body, _ = json.Marshal(m)
			if mutation == "duplicate member" {
				first, _ := json.Marshal(map[string]any{name: m[name]})
				body = append(append(first[:len(first)-1:len(first)-1], ','), body[1:]...)
			}
		case "trailing data":
			body = append(body, " {}"...)
		case "oversize":
			body = []byte(`{"name":"` + strings.Repeat("a", 70<<10) + `"}`)
		case "no content type":
			contentType = ""
		case "text/plain":
			contentType = "text/plain"
		case "empty":
			body = nil
		}
	}
	target := path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r, what
}

// mistyped is a value of another JSON type than v's.
func mistyped(v any) any {
	switch v.(type) {
	case string:
		return 12
	case float64, int64:
		return "12"
	case bool:
		return "true"
	case []any:
		return map[string]any{}
	}
	return []any{}
}
