package apikey

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// TestWhoAmI: any valid key reads its own view, whatever its scopes,
// current with the store: its last use once a flush has recorded it, and
// the key that replaced it.
func TestWhoAmI(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		s := newServer(t, st, flushByHand, slowStore)
		key, k := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
		var v view.KeyView
		testkit.MustJSON(t, s.call("GET", "/v1/whoami", key, ""), 200, &v)
		if v.ID != k.ID || v.Owner != "acme" || v.Hint != k.Hint || v.LastUsedAt != nil || v.Status != "active" {
			t.Errorf("whoami = %+v, want the key's view, never used", v)
		}
		// The flush records the time it runs, but never past the count's
		// day: here the fake clock's, T0's.
		today := store.UsageCount{Day: store.DayOf(s.clock.Now())}
		lo := keyrules.LastUsed(today, time.Now())
		s.call("GET", "/", key, "") // counted; whoami, management, is not
		if err := s.meter.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		hi := keyrules.LastUsed(today, time.Now())
		testkit.MustJSON(t, s.call("GET", "/v1/whoami", key, ""), 200, &v)
		if v.LastUsedAt == nil || v.LastUsedAt.Before(lo) || v.LastUsedAt.After(hi) {
			t.Errorf("last_used_at after a flush = %v, want %v to %v", v.LastUsedAt, lo, hi)
		}
		var listed keyListView
		admin, _ := s.mint(t, "acme", manage)
		testkit.MustJSON(t, s.call("GET", "/v1/keys", admin, ""), 200, &listed)
		i := slices.IndexFunc(listed.Keys, func(l view.KeyView) bool { return l.ID == k.ID })
		if i < 0 || listed.Keys[i].LastUsedAt == nil || !listed.Keys[i].LastUsedAt.Equal(*v.LastUsedAt) {
			t.Errorf("list = %+v, want the key's last use", listed.Keys)
		}
		var rotated view.RotatedKeyView
		testkit.MustJSON(t, s.call("POST", "/v1/keys/"+k.ID+"/rotate", admin, ""), 201, &rotated)
		if rotated.Replaces.ReplacedBy != rotated.ID {
			t.Errorf("rotate: replaces.replaced_by = %q, want the new key's ID %s", rotated.Replaces.ReplacedBy, rotated.ID)
		}
		testkit.MustJSON(t, s.call("GET", "/v1/whoami", key, ""), 200, &v)
		if v.ReplacedBy != rotated.ID {
			t.Errorf("whoami of the rotated key: replaced_by = %q, want %s", v.ReplacedBy, rotated.ID)
		}
		testkit.WantProblem(t, s.call("GET", "/v1/whoami", "kg_nope", ""), 401, "invalid_api_key")
	})
}

// TestKeyUsage: a manager reads the usage of each key of its owner, and of
// no other owner's (404, as for none); a key without keys:manage, none.
func TestKeyUsage(t *testing.T) {
	forEachKeysServer(t, func(t *testing.T, s *server) {
		admin, _ := s.mint(t, "acme", manage)
		user, u := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings, scopeUsage}; k.MonthlyQuota = 50 })
		_, other := s.mint(t, "globex")
		for range 3 {
			s.call("POST", "/v1/things", user, "{}")
		}
		var v view.UsageView
		testkit.MustJSON(t, s.call("GET", "/v1/keys/"+u.ID+"/usage", admin, ""), 200, &v)
		if v.KeyID != u.ID || v.MonthTotal != 3 || v.MonthlyQuota == nil || *v.MonthlyQuota != 50 || v.Owner == nil || v.Owner.Owner != "acme" {
			t.Errorf("usage of the user's key = %+v, want its 3 requests and quota 50", v)
		}
		if len(v.Days) != 1 || v.Days[0].Requests != 3 {
			t.Errorf("days = %v, want today's 3", v.Days)
		}
		testkit.WantProblem(t, s.call("GET", "/v1/keys/"+other.ID+"/usage", admin, ""), 404, "key_not_found")
		testkit.WantProblem(t, s.call("GET", "/v1/keys/"+u.ID+"/usage?from=x", admin, ""), 400, "invalid_date")
		p := testkit.WantProblem(t, s.call("GET", "/v1/keys/"+u.ID+"/usage", user, ""), 403, "insufficient_scope")
		if p.Scope != scopeKeys {
			t.Errorf("scope = %q, want %s", p.Scope, scopeKeys)
		}
	})
}

// TestConsoleCallsAreManagement: the console's own calls, whoami and a
// key's usage, are served to an owner at its quota and are not counted: a
// leaked key that burns the quota cannot keep the console from signing in.
func TestConsoleCallsAreManagement(t *testing.T) {
	s := newServer(t, nil)
	if err := s.store.SetPlan(t.Context(), store.Plan{Owner: "acme", MonthlyQuota: 1}); err != nil {
		t.Fatal(err)
	}
	admin, a := s.mint(t, "acme", manage)
	leaked, _ := s.mint(t, "acme")
	s.call("GET", "/", leaked, "")
	testkit.WantProblem(t, s.call("GET", "/", leaked, ""), 429, "quota_exceeded")
	for _, path := range []string{"/v1/whoami", "/v1/keys/" + a.ID + "/usage"} {
		for range 3 {
			if w := s.call("GET", path, admin, ""); w.Code != 200 {
				t.Fatalf("GET %s at the owner's quota = %d %s, want 200", path, w.Code, w.Body)
			}
		}
	}
	var v view.UsageView
	testkit.MustJSON(t, s.call("GET", "/v1/keys/"+a.ID+"/usage", admin, ""), 200, &v)
	if v.MonthTotal != 0 || v.Owner.MonthTotal != 1 {
		t.Errorf("after the console's calls the admin key counts %d and its owner %d; want 0 and 1, the leaked key's one", v.MonthTotal, v.Owner.MonthTotal)
	}
}
