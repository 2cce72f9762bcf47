package apikey

import (
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// TestKeysCreateCapped checks POST /v1/keys against the owner's max_keys,
// on Firestore: 409 key_limit_reached past it, with the limit; revoking a
// key or its expiry frees a slot; rotating is never refused.
func TestKeysCreateCapped(t *testing.T) {
	s := newServer(t, testkit.EmulatorStore(t), func(c *Config) { c.StoreTimeout = emulatorConfig().StoreTimeout })
	manage := func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings, scopeUsage} }
	if err := s.store.SetPlan(t.Context(), store.Plan{Owner: "acme", MaxKeys: 3}); err != nil {
		t.Fatal(err)
	}
	caller, _ := s.mint(t, "acme", manage)
	s.mint(t, "other", manage) // another owner's keys do not count
	var expiring, second NewKeyView
	testkit.MustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"a","expires_in":"1h"}`), 201, &expiring)
	testkit.MustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"b"}`), 201, &second)

	p := testkit.WantProblem(t, s.call("POST", "/v1/keys", caller, `{"name":"c"}`), 409, "key_limit_reached")
	if p.MaxKeys != 3 || !strings.Contains(p.Detail, "max_keys 3") {
		t.Errorf("problem = %+v, want limit 3 named in the detail", p)
	}
	if page, err := s.store.ListByOwner(t.Context(), "acme", nil, 10); err != nil || len(page.Keys) != 3 {
		t.Errorf("the refused create stored a key: %d keys, %v", len(page.Keys), err)
	}

	// Rotation replaces a key: never refused by the cap.
	var rotated RotatedKeyView
	testkit.MustJSON(t, s.call("POST", "/v1/keys/"+second.ID+"/rotate", caller, `{"grace":"0s"}`), 201, &rotated)

	// Revoking one frees a slot.
	if w := s.call("DELETE", "/v1/keys/"+rotated.ID, caller, ""); w.Code != 204 {
		t.Fatalf("revoke = %d %s", w.Code, w.Body)
	}
	testkit.MustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"d"}`), 201, &NewKeyView{})
	testkit.WantProblem(t, s.call("POST", "/v1/keys", caller, `{"name":"e"}`), 409, "key_limit_reached")

	// So does an expiry.
	s.clock.Advance(time.Hour)
	testkit.MustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"f"}`), 201, &NewKeyView{})
	testkit.WantProblem(t, s.call("POST", "/v1/keys", caller, `{"name":"g"}`), 409, "key_limit_reached")
}

// TestKeysCreateDefaultCap checks that an owner without a plan gets
// DEFAULT_MAX_KEYS, and one with a plan its own, on the memory store.
func TestKeysCreateDefaultCap(t *testing.T) {
	s := newServer(t, nil, func(c *Config) { c.DefaultMaxKeys = 2 })
	caller, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings, scopeUsage} })
	if w := s.call("POST", "/v1/keys", caller, `{}`); w.Code != 201 {
		t.Fatalf("create under the default = %d %s", w.Code, w.Body)
	}
	if p := testkit.WantProblem(t, s.call("POST", "/v1/keys", caller, `{}`), 409, "key_limit_reached"); p.MaxKeys != 2 {
		t.Errorf("max_keys = %d, want DEFAULT_MAX_KEYS 2", p.MaxKeys)
	}
	if err := s.store.SetPlan(t.Context(), store.Plan{Owner: "acme", MaxKeys: 3}); err != nil {
		t.Fatal(err)
	}
	if w := s.call("POST", "/v1/keys", caller, `{}`); w.Code != 201 {
		t.Errorf("create under the plan's cap = %d %s", w.Code, w.Body)
	}
}
