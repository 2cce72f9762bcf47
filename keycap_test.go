package keygate

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestKeysCreateCapped checks POST /v1/keys against the owner's max_keys,
// on Firestore: 409 key_limit_reached past it, with the limit; revoking a
// key or its expiry frees a slot; rotating is never refused.
func TestKeysCreateCapped(t *testing.T) {
	s := newKeysServer(t)
	if err := s.store.(store.PlanStore).SetPlan(t.Context(), store.Plan{Owner: "acme", MaxKeys: 3}); err != nil {
		t.Fatal(err)
	}
	caller, _ := mintTestKey(t, s.store, "acme", manage)
	mintTestKey(t, s.store, "other", manage) // another owner's keys do not count
	var expiring, second NewKeyView
	mustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"a","expires_in":"1h"}`), 201, &expiring)
	mustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"b"}`), 201, &second)

	p := wantProblem(t, s.call("POST", "/v1/keys", caller, `{"name":"c"}`), 409, "key_limit_reached")
	if p.MaxKeys != 3 || !strings.Contains(p.Detail, "max_keys 3") {
		t.Errorf("problem = %+v, want limit 3 named in the detail", p)
	}
	if page, _ := s.store.ListByOwner(t.Context(), "acme", nil, 10); len(page.Keys) != 3 {
		t.Errorf("the refused create stored a key: %d keys", len(page.Keys))
	}

	// Rotation replaces a key: never refused by the cap.
	var rotated RotatedKeyView
	mustJSON(t, s.call("POST", "/v1/keys/"+second.ID+"/rotate", caller, `{"grace":"0s"}`), 201, &rotated)

	// Revoking one frees a slot.
	if w := s.call("DELETE", "/v1/keys/"+rotated.ID, caller, ""); w.Code != 204 {
		t.Fatalf("revoke = %d %s", w.Code, w.Body)
	}
	mustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"d"}`), 201, &NewKeyView{})
	wantProblem(t, s.call("POST", "/v1/keys", caller, `{"name":"e"}`), 409, "key_limit_reached")

	// So does an expiry.
	s.clock.Advance(time.Hour)
	mustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"f"}`), 201, &NewKeyView{})
	wantProblem(t, s.call("POST", "/v1/keys", caller, `{"name":"g"}`), 409, "key_limit_reached")
}

// TestKeysCreateDefaultCap checks that an owner without a plan gets
// DEFAULT_MAX_KEYS, and one with a plan its own, on the memory store.
func TestKeysCreateDefaultCap(t *testing.T) {
	store := memstore.New()
	log, _ := testLogger()
	srv := NewServer(testConfig(func(c *Config) { c.DefaultMaxKeys = 2 }), store, Options{Now: newFakeClock().Now, Logger: log})
	call := func(key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/keys", strings.NewReader(`{}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	caller, _ := mintTestKey(t, store, "acme", manage)
	if w := call(caller); w.Code != 201 {
		t.Fatalf("create under the default = %d %s", w.Code, w.Body)
	}
	if p := wantProblem(t, call(caller), 409, "key_limit_reached"); p.MaxKeys != 2 {
		t.Errorf("max_keys = %d, want DEFAULT_MAX_KEYS 2", p.MaxKeys)
	}
	if err := store.SetPlan(t.Context(), store.Plan{Owner: "acme", MaxKeys: 3}); err != nil {
		t.Fatal(err)
	}
	if w := call(caller); w.Code != 201 {
		t.Errorf("create under the plan's cap = %d %s", w.Code, w.Body)
	}
}
