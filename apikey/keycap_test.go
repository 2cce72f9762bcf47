package apikey

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// TestKeysCreateCapped checks POST /v1/keys against the owner's max_keys,
// on Firestore: 409 key_limit_reached past it, with the limit; revoking a
// key or its expiry frees a slot; rotating at the cap goes one key over it
// (TestKeysRotationCapped).
func TestKeysCreateCapped(t *testing.T) {
	s := newServer(t, testkit.EmulatorStore(t), func(c *Config) { c.StoreTimeout = emulatorConfig().StoreTimeout })
	manage := func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings, scopeUsage} }
	if err := s.store.SetPlan(t.Context(), store.Plan{Owner: "acme", MaxKeys: 3}); err != nil {
		t.Fatal(err)
	}
	caller, _ := s.mint(t, "acme", manage)
	s.mint(t, "other", manage) // another owner's keys do not count
	var expiring, second view.NewKeyView
	testkit.MustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"a","expires_in":"1h"}`), 201, &expiring)
	testkit.MustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"b"}`), 201, &second)

	p := testkit.WantProblem(t, s.call("POST", "/v1/keys", caller, `{"name":"c"}`), 409, "key_limit_reached")
	if p.MaxKeys != 3 || !strings.Contains(p.Detail, "max_keys 3") {
		t.Errorf("problem = %+v, want limit 3 named in the detail", p)
	}
	if page, err := s.store.ListByOwner(t.Context(), "acme", nil, 10); err != nil || len(page.Keys) != 3 {
		t.Errorf("the refused create stored a key: %d keys, %v", len(page.Keys), err)
	}

	// Rotation replaces a key: at the cap, it goes one key over it.
	var rotated view.RotatedKeyView
	testkit.MustJSON(t, s.call("POST", "/v1/keys/"+second.ID+"/rotate", caller, `{"grace":"0s"}`), 201, &rotated)

	// Revoking one frees a slot.
	if w := s.call("DELETE", "/v1/keys/"+rotated.ID, caller, ""); w.Code != 204 {
		t.Fatalf("revoke = %d %s", w.Code, w.Body)
	}
	testkit.MustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"d"}`), 201, &view.NewKeyView{})
	testkit.WantProblem(t, s.call("POST", "/v1/keys", caller, `{"name":"e"}`), 409, "key_limit_reached")

	// So does an expiry.
	s.clock.Advance(time.Hour)
	testkit.MustJSON(t, s.call("POST", "/v1/keys", caller, `{"name":"f"}`), 201, &view.NewKeyView{})
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

// TestKeysRotationCapped: the finding of issue 21, at max_keys 3 with two
// keys, on every store: ten POST /v1/keys/ID/rotate {"grace":"720h"} of one
// key, one after another and then ten at once, are one 201 and nine 409
// key_replaced; a chain (rotate the new key each time) is refused 409
// key_limit_reached once the owner holds 4. The owner never holds more
// than 4 active keys.
func TestKeysRotationCapped(t *testing.T) {
	forEachKeysServer(t, func(t *testing.T, s *server) {
		for _, owner := range []string{"serial", "at-once", "chain"} {
			if err := s.store.SetPlan(t.Context(), store.Plan{Owner: owner, MaxKeys: 3}); err != nil {
				t.Fatal(err)
			}
		}
		active := func(owner string) int { return activeKeys(t, s.store, owner, s.clock.Now()) }
		rotate := func(key, id string) *httptest.ResponseRecorder {
			return s.call("POST", "/v1/keys/"+id+"/rotate", key, `{"grace":"720h"}`)
		}
		codes := func(ws []*httptest.ResponseRecorder) map[string]int { return answerCodes(t, ws) }

		admin, _ := s.mint(t, "serial", manage)
		_, k := s.mint(t, "serial")
		var ws []*httptest.ResponseRecorder
		most := 0
		for range 10 {
			ws = append(ws, rotate(admin, k.ID))
			most = max(most, active("serial"))
		}
		got := codes(ws)
		t.Logf("ten rotations of one key: %v, at most %d active keys", got, most)
		if got["201"] != 1 || got["409 key_replaced"] != 9 || most > 4 {
			t.Errorf("ten rotations of one key: %v, at most %d active keys; want one 201, nine key_replaced, at most 4", got, most)
		}
		if p := testkit.WantProblem(t, ws[1], 409, "key_replaced"); !strings.Contains(p.Detail, "rotate the replacement") {
			t.Errorf("key_replaced detail = %q, want what to do", p.Detail)
		}

		admin, _ = s.mint(t, "at-once", manage)
		_, k = s.mint(t, "at-once")
		ws = make([]*httptest.ResponseRecorder, 10)
		var wg sync.WaitGroup
		for i := range ws {
			wg.Go(func() { ws[i] = rotate(admin, k.ID) })
		}
		wg.Wait()
		got, n := codes(ws), active("at-once")
		t.Logf("ten rotations of one key at once: %v, %d active keys", got, n)
		if got["201"] != 1 || got["409 key_replaced"] != 9 || n > 4 {
			t.Errorf("ten rotations of one key at once: %v, %d active keys; want one 201, nine key_replaced, at most 4", got, n)
		}

		admin, _ = s.mint(t, "chain", manage)
		_, k = s.mint(t, "chain")
		id, most, applied := k.ID, 0, 0
		var last *httptest.ResponseRecorder
		for range 10 { // A → A', A' → A'', …
			last = rotate(admin, id)
			if last.Code == 201 {
				var v view.RotatedKeyView
				testkit.MustJSON(t, last, 201, &v)
				id = v.ID
				applied++
			}
			most = max(most, active("chain"))
			s.clock.Advance(time.Minute)
		}
		t.Logf("a chain of ten rotations: %d applied, at most %d active keys", applied, most)
		p := testkit.WantProblem(t, last, 409, "key_limit_reached")
		if applied != 2 || most != 4 || p.MaxKeys != 3 || !strings.Contains(p.Detail, "grace") {
			t.Errorf("a chain of ten rotations: %d applied, at most %d active keys, last %+v; want 2, 4 and key_limit_reached naming max_keys 3 and the grace", applied, most, p)
		}
	})
}

// TestKeysRotationCappedTwoInstances: rotations at once through two
// instances (two Gates, each with its own Firestore client) on the
// emulator, at max_keys 3: ten of one key are one 201 and nine 409
// key_replaced; six of the three keys of an owner at its cap are one 201
// and five 409 (key_limit_reached, or key_replaced for a key just
// rotated); the owner never holds more than 4 active keys.
func TestKeysRotationCappedTwoInstances(t *testing.T) {
	a, b := twoRealInstances(t)
	for _, owner := range []string{"one", "full"} {
		if err := a.store.SetPlan(t.Context(), store.Plan{Owner: owner, MaxKeys: 3}); err != nil {
			t.Fatal(err)
		}
	}
	atOnce := func(admin string, ids []string) map[string]int {
		ws := make([]*httptest.ResponseRecorder, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			s := []*server{a, b}[i%2]
			wg.Go(func() { ws[i] = s.call("POST", "/v1/keys/"+id+"/rotate", admin, `{"grace":"720h"}`) })
		}
		wg.Wait()
		return answerCodes(t, ws)
	}
	active := func(owner string) int { return activeKeys(t, a.store, owner, time.Now()) }

	admin, _ := a.mint(t, "one", manage)
	_, k := a.mint(t, "one")
	got := atOnce(admin, []string{k.ID, k.ID, k.ID, k.ID, k.ID, k.ID, k.ID, k.ID, k.ID, k.ID})
	n := active("one")
	t.Logf("ten rotations of one key at once through two instances: %v, %d active keys", got, n)
	if got["201"] != 1 || got["409 key_replaced"] != 9 || n != 3 {
		t.Errorf("%v, %d active keys; want one 201, nine 409 key_replaced, 3", got, n)
	}

	admin, adminKey := a.mint(t, "full", manage)
	_, k1 := a.mint(t, "full")
	_, k2 := a.mint(t, "full")
	ids := []string{adminKey.ID, k1.ID, k2.ID}
	got = atOnce(admin, append(ids, ids...))
	n = active("full")
	t.Logf("six rotations of the three keys of an owner at its cap through two instances: %v, %d active keys", got, n)
	if got["201"] != 1 || got["409 key_limit_reached"]+got["409 key_replaced"] != 5 || n != 4 {
		t.Errorf("%v, %d active keys; want one 201, five 409, 4", got, n)
	}
}

// answerCodes counts answers by "201", or by status and problem code
// ("409 key_replaced").
func answerCodes(t *testing.T, ws []*httptest.ResponseRecorder) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, w := range ws {
		code := "201"
		if w.Code != 201 {
			code = fmt.Sprint(w.Code, " ", testkit.Problem(t, w).Code)
		}
		got[code]++
	}
	return got
}

// activeKeys counts owner's keys active at now in s.
func activeKeys(t *testing.T, s store.KeyStore, owner string, now time.Time) int {
	t.Helper()
	n := 0
	for k, err := range keyrules.OwnerKeys(context.Background(), s, owner, store.MaxPageLimit) {
		if err != nil {
			t.Fatal(err)
		}
		if k.Status(now) == store.StatusActive {
			n++
		}
	}
	return n
}
