package apikey

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// mintThrough creates a key through POST /v1/keys with the key admin,
// asking for scopes, and returns the new key and its view.
func (s *server) mintThrough(t testing.TB, admin, scopes string) (string, view.KeyView) {
	t.Helper()
	var v view.NewKeyView
	testkit.MustJSON(t, s.call("POST", "/v1/keys", admin, `{"name":"child","scopes":`+scopes+`}`), 201, &v)
	return v.Key, v.KeyView
}

// TestCreatedBy: a key created through the API names its creator, a key
// rotated through it the key that rotated it, in the API's view; a key the
// operator made names none.
func TestCreatedBy(t *testing.T) {
	s := newServer(t, nil)
	admin, a := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys} })
	child, c := s.mintThrough(t, admin, `["keys:manage"]`)
	if c.CreatedBy != a.ID {
		t.Errorf("created key: created_by %q, want the creator %s", c.CreatedBy, a.ID)
	}
	var rot view.RotatedKeyView
	testkit.MustJSON(t, s.call("POST", "/v1/keys/"+c.ID+"/rotate", child, `{"grace":"0s"}`), 201, &rot)
	if rot.CreatedBy != c.ID {
		t.Errorf("self-rotated key: created_by %q, want the key that rotated it %s", rot.CreatedBy, c.ID)
	}
	var got map[string]any
	testkit.MustJSON(t, s.call("GET", "/v1/keys/"+a.ID, admin, ""), 200, &got)
	if _, ok := got["created_by"]; ok {
		t.Errorf("the operator's key shows created_by %v, want none", got["created_by"])
	}
}

// TestSecretScanningNamesMinted: the NOTICE of a leaked key names the keys
// it minted, transitively (a child, the child's rotation, a grandchild),
// and no other key of its owner or of another; on both stores.
func TestSecretScanningNamesMinted(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		s := newScanned(t, st, slowStore)
		admin, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys} })
		leaked, _ := s.mintThrough(t, admin, `["keys:manage"]`)
		child, c := s.mintThrough(t, leaked, `["keys:manage"]`)
		var rot view.RotatedKeyView
		testkit.MustJSON(t, s.call("POST", "/v1/keys/"+c.ID+"/rotate", child, `{"grace":"0s"}`), 201, &rot)
		_, grand := s.mintThrough(t, rot.Key, `["keys:manage"]`)
		_, sibling := s.mintThrough(t, admin, `["keys:manage"]`)
		s.mint(t, "globex")
		labelsOf(t, s.signed(t, reportOf(leakAt, leaked)))
		var notice struct {
			Message string   `json:"message"`
			Minted  int      `json:"minted_keys"`
			IDs     []string `json:"minted_key_ids"`
		}
		for line := range strings.Lines(s.logs.String()) {
			if strings.Contains(line, `"audit: key leaked"`) {
				if err := json.Unmarshal([]byte(line), &notice); err != nil {
					t.Fatal(err)
				}
			}
		}
		want := []string{c.ID, rot.ID, grand.ID}
		slices.Sort(want)
		slices.Sort(notice.IDs)
		if notice.Minted != 3 || !slices.Equal(notice.IDs, want) {
			t.Errorf("NOTICE names %d minted keys %v, want 3: %v (not the sibling %s)\n%s", notice.Minted, notice.IDs, want, sibling.ID, s.logs)
		}
	})
}
