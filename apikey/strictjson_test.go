package apikey

import (
	"testing"

	"github.com/keygate/keygate/internal/testkit"
)

// TestKeysStrictJSON sends each body encoding/json would read leniently to
// each key endpoint with a body: 400 invalid_json naming the member, and no
// key made.
func TestKeysStrictJSON(t *testing.T) {
	s := newServer(t, nil)
	key, k := s.mint(t, "acme", manage)
	rotate := "/v1/keys/" + k.ID + "/rotate"
	cases := []struct {
		name, path, body, member string
	}{
		{"create: duplicate", "/v1/keys", `{"name":"a","name":"b"}`, "name"},
		{"create: another case", "/v1/keys", `{"NAME":"x","Scopes":["things:check"]}`, "NAME"},
		{"create: duplicate in another case", "/v1/keys", `{"name":"x","Name":"y"}`, "Name"},
		{"create: raw invalid UTF-8", "/v1/keys", "{\"name\":\"\xff\xfe\"}", "name"},
		{"create: lone surrogate", "/v1/keys", `{"name":"\ud800"}`, "name"},
		{"create: lone surrogate in a scope", "/v1/keys", `{"name":"a","scopes":["\udfff"]}`, "scopes[0]"},
		{"create: unknown", "/v1/keys", `{"name":"a","owner":"evil"}`, "owner"},
		{"create: null scopes", "/v1/keys", `{"name":"a","scopes":null}`, "scopes"},
		{"create: null name", "/v1/keys", `{"name":null}`, "name"},
		{"create: null expires_in", "/v1/keys", `{"name":"a","expires_in":null}`, "expires_in"},
		{"create: null scope", "/v1/keys", `{"name":"a","scopes":["things:check",null]}`, "scopes[1]"},
		{"rotate: duplicate", rotate, `{"grace":"1h","grace":"720h"}`, "grace"},
		{"rotate: another case", rotate, `{"Grace":"1h"}`, "Grace"},
		{"rotate: lone surrogate", rotate, `{"grace":"1h\ud800"}`, "grace"},
		{"rotate: raw invalid UTF-8", rotate, "{\"grace\":\"1h\xc0\"}", "grace"},
		{"rotate: unknown", rotate, `{"grace":"1h","scopes":["x"]}`, "scopes"},
		{"rotate: null grace", rotate, `{"grace":null}`, "grace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testkit.WantProblem(t, s.call("POST", c.path, key, c.body), 400, "invalid_json")
			if p.Member != c.member || len(p.Errors) != 1 || p.Errors[0][:len(c.member)+1] != c.member+":" {
				t.Errorf("member %q, errors %q: want both to name %s", p.Member, p.Errors, c.member)
			}
		})
	}
	var list keyListView
	testkit.MustJSON(t, s.call("GET", "/v1/keys", key, ""), 200, &list)
	if len(list.Keys) != 1 {
		t.Errorf("%d keys after the refused requests, want the caller's only", len(list.Keys))
	}
}
