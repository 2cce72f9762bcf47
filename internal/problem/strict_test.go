package problem_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/problem"
	"github.com/keygate/keygate/internal/testkit"
)

// strictMembers are the members of strictRequest's objects, for the
// reference.
var strictMembers = map[string][]string{"": {"name", "scopes", "n", "sub", "tags"}, "sub": {"a"}}

// strictRequest is a request shape with a nested object and arrays, every
// member optional, so that its re-encoding holds exactly what was decoded.
type strictRequest struct {
	Name   *string   `json:"name,omitempty"`
	Scopes *[]string `json:"scopes,omitempty"`
	N      *int      `json:"n,omitempty"`
	Sub    *struct {
		A *string `json:"a,omitempty"`
	} `json:"sub,omitempty"`
	Tags *map[string]string `json:"tags,omitempty"`
}

func TestDecodeObjectStrict(t *testing.T) {
	cases := []struct {
		name, body, member, msg string // msg: "" for accepted
	}{
		{"plain", `{"name":"a","scopes":["x"],"sub":{"a":"b"},"tags":{"k":"v"}}`, "", ""},
		{"escaped pair", `{"name":"\ud83d\ude00 \u00e9 \\ud800"}`, "", ""},
		{"literal U+FFFD", `{"name":"` + "\uFFFD" + `\ufffd"}`, "", ""},
		{"duplicate", `{"name":"a","name":"b"}`, "name", "name: duplicate member"},
		{"duplicate in another case", `{"name":"a","Name":"b"}`, "Name", `Name: duplicate member: "name" differs only in letter case`},
		{"other case", `{"NAME":"x"}`, "NAME", `NAME: unknown member; member names are case-sensitive: did you mean "name"?`},
		{"other case nested", `{"sub":{"A":"x"}}`, "sub.A", `sub.A: unknown member; member names are case-sensitive: did you mean "a"?`},
		{"unknown", `{"owner":"evil"}`, "owner", "owner: unknown member (want name, scopes, n, sub or tags)"},
		{"unknown odd name", `{"a b":1}`, `"a b"`, `"a b": unknown member (want name, scopes, n, sub or tags)`},
		{"raw invalid UTF-8", "{\"name\":\"\xff\xfe\"}", "name", "name: invalid UTF-8"},
		{"raw invalid UTF-8 in an element", "{\"scopes\":[\"a\",\"\xc3\"]}", "scopes[1]", "scopes[1]: invalid UTF-8"},
		{"lone high surrogate", `{"name":"\ud800"}`, "name", `name: invalid UTF-8: the escape \ud800 is a lone surrogate`},
		{"lone low surrogate", `{"name":"a\uDC00"}`, "name", `name: invalid UTF-8: the escape \uDC00 is a lone surrogate`},
		{"high then not low", `{"name":"\ud800\u0041"}`, "name", `name: invalid UTF-8: the escape \ud800 is a lone surrogate`},
		{"surrogate in a map key", `{"tags":{"\ud800":"v"}}`, "tags", `tags: a member name: invalid UTF-8: the escape \ud800 is a lone surrogate`},
		{"duplicate map key", `{"tags":{"k":"1","k":"2"}}`, "tags.k", "tags.k: duplicate member"},
		{"null member", `{"scopes":null}`, "scopes", "scopes: null is not allowed; omit the member for its default"},
		{"null element", `{"scopes":["a",null]}`, "scopes[1]", "scopes[1]: null is not allowed here"},
		{"null nested", `{"sub":{"a":null}}`, "sub.a", "sub.a: null is not allowed; omit the member for its default"},
		{"null body", `null`, "", "the request body must be a JSON object, not null"},
		{"array body", `[]`, "", "the request body must be a JSON object, not an array"},
		{"syntax", `{"name":`, "", "the request body ends in the middle of a JSON value"},
		{"wrong type", `{"n":"1"}`, "n", "n: unexpected a string"},
		{"trailing", `{} {}`, "", "unexpected data after the JSON object at byte offset 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var dst strictRequest
			p := problem.DecodeObject([]byte(c.body), &dst, "request")
			switch {
			case c.msg == "" && p != nil:
				t.Fatalf("refused: %+v", p)
			case c.msg == "":
				return
			case p == nil:
				t.Fatalf("accepted, want %q", c.msg)
			}
			if p.Status != 400 || p.Code != "invalid_json" || len(p.Errors) != 1 || p.Errors[0] != c.msg || p.Member != c.member {
				t.Errorf("problem = %d %s %q member %q, want 400 invalid_json %q member %q", p.Status, p.Code, p.Errors, p.Member, c.msg, c.member)
			}
		})
	}
}

// FuzzDecodeObject checks the strict decoder against references: what it
// accepts, encoding/json decodes to the same value, with every member and
// string as sent (no member dropped, merged or matched in another case, no
// character replaced); what encoding/json accepts and it refuses holds one
// of the things it refuses, as found by checks of their own.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{"name":"a"}`, `{"name":"a","name":"b"}`, `{"NAME":"a"}`, `{"name":"\ud800"}`,
		"{\"name\":\"\xff\"}", `{"scopes":null}`, `{"sub":{"a":"b"},"tags":{"x":"y","X":"z"}}`, `{"scopes":["a","\udc00"]}`,
		`{"name":"\ud83d\ude00"}`, `{"n":1,"tags":{}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var strict strictRequest
		p := problem.DecodeObject(body, &strict, "request")
		var lenient strictRequest
		lenientErr := json.Unmarshal(body, &lenient)
		if p == nil {
			if lenientErr != nil {
				t.Fatalf("accepted what encoding/json refuses: %v", lenientErr)
			}
			if !reflect.DeepEqual(strict, lenient) {
				t.Fatalf("decoded %+v, encoding/json %+v", strict, lenient)
			}
			if reasons := testkit.StrictJSONReason(body, strictMembers); reasons != "" {
				t.Fatalf("accepted a body with %s", reasons)
			}
			// Re-encoded, the value is the body as sent, member for member.
			again, _ := json.Marshal(strict)
			var want, got any
			json.Unmarshal(body, &want)
			json.Unmarshal(again, &got)
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("the body %s decodes to %s", body, again)
			}
			return
		}
		if p.Status != 400 || p.Code != "invalid_json" || len(p.Errors) != 1 {
			t.Fatalf("problem %+v", p)
		}
		if lenientErr == nil && testkit.StrictJSONReason(body, strictMembers) == "" {
			t.Fatalf("refused %q (%s), which has nothing to refuse", body, p.Errors[0])
		}
	})
}

// TestDecodeObjectDeepPath: the member path of a problem 9,000 levels deep
// is cut to MaxEcho bytes, as any value quoted back is, in the detail, in
// errors and in member; and building it does not walk the whole path.
func TestDecodeObjectDeepPath(t *testing.T) {
	const depth = 9000
	for _, c := range []struct{ name, body string }{
		{"arrays", `{"scopes":` + strings.Repeat("[", depth) + `{"a":1,"a":2}` + strings.Repeat("]", depth) + `}`},
		{"objects", `{"tags":` + strings.Repeat(`{"k":`, depth) + `null` + strings.Repeat("}", depth) + `}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var dst strictRequest
			p := problem.DecodeObject([]byte(c.body), &dst, "request")
			if p == nil {
				t.Fatal("accepted")
			}
			if len(p.Member) > problem.MaxEcho+len("...") || !strings.HasSuffix(p.Member, "...") {
				t.Errorf("member is %d bytes (%.60q), want at most %d and cut", len(p.Member), p.Member, problem.MaxEcho+3)
			}
			if len(p.Detail) > 200 || len(p.Errors) != 1 || len(p.Errors[0]) > 150 {
				t.Errorf("detail %d bytes, errors %d bytes: want short (%.80q)", len(p.Detail), len(strings.Join(p.Errors, "")), p.Detail)
			}
		})
	}
}
