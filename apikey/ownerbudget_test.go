package apikey

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// Issue 29's attack on the management endpoints: with one customer's admin
// key, a chain of keys each rotating itself with grace 0s, and a tree of
// keys each minting more and reading usage, each new key once brought a
// fresh budget. Now the owner's one budget bounds them all.

// attacker is one owner's keys in the attack: the head of the rotation
// chain and the minting tree, and the tally of what was served.
type attacker struct {
	mu            sync.Mutex
	self, selfID  string
	tree          []string
	served, mints int64
	last          time.Time // when the last answer came
}

// newAttacker mints the chain's first key and the tree's root for owner.
func newAttacker(t *testing.T, srv *server, created time.Time) *attacker {
	scopes := func(k *store.Key) { k.Scopes, k.CreatedAt = []string{scopeKeys, scopeUsage}, created }
	self, s := srv.mint(t, "acme", scopes)
	root, _ := srv.mint(t, "acme", scopes)
	return &attacker{self: self, selfID: s.ID, tree: []string{root}}
}

// tally counts one answer of the attack: served (2xx), or refused by the
// management budget; any other answer fails the test.
func (a *attacker) tally(t *testing.T, w *httptest.ResponseRecorder, mint bool) bool {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last = time.Now()
	switch {
	case w.Code/100 == 2:
		a.served++
		if mint {
			a.mints++
		}
		return true
	case w.Code == http.StatusTooManyRequests:
		if p := testkit.Problem(t, w); p.Limit != "management" {
			t.Errorf("refused by limit %q, want management", p.Limit)
		}
		return false
	}
	t.Errorf("attack answered %d %s", w.Code, w.Body)
	return false
}

// rotate has the chain's head rotate itself, with grace 0s, on srv.
func (a *attacker) rotate(t *testing.T, srv *server) {
	a.mu.Lock()
	self, id := a.self, a.selfID
	a.mu.Unlock()
	w := srv.do("POST", "/v1/keys/"+id+"/rotate", `{"grace":"0s"}`, self)
	if a.tally(t, w, true) {
		var v view.RotatedKeyView
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		a.mu.Lock()
		a.self, a.selfID = v.Key, v.ID
		a.mu.Unlock()
	}
}

// mintAndRead has the tree's i-th key mint a key, and another read usage,
// on srv.
func (a *attacker) mintAndRead(t *testing.T, srv *server, i int) {
	a.mu.Lock()
	minter, reader := a.tree[i%len(a.tree)], a.tree[(i+1)%len(a.tree)]
	a.mu.Unlock()
	w := srv.do("POST", "/v1/keys", `{"name":"child","scopes":["keys:manage","usage:read"]}`, minter)
	if a.tally(t, w, true) {
		var v view.NewKeyView
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		a.mu.Lock()
		a.tree = append(a.tree, v.Key)
		a.mu.Unlock()
	}
	a.tally(t, srv.do("GET", "/v1/usage", "", reader), false)
}

// bystander is another owner's key, used meanwhile: every request must be
// served.
func bystander(t *testing.T, srv *server, key string) {
	t.Helper()
	for _, r := range []struct{ method, path string }{{"GET", "/v1/keys?limit=1"}, {"POST", "/v1/things"}} {
		start := time.Now()
		if w := srv.do(r.method, r.path, "", key); w.Code != http.StatusOK || time.Since(start) > 5*time.Second {
			t.Errorf("another owner's %s %s during the attack = %d after %v, want 200", r.method, r.path, w.Code, time.Since(start))
		}
	}
}

// ownerDocs counts the owner's key documents.
func ownerDocs(t *testing.T, st store.KeyStore, owner string) int {
	n := 0
	for _, err := range keyrules.OwnerKeys(t.Context(), st, owner, store.MaxPageLimit) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// TestManagementBudgetChains: the attack for 10 s of the fake clock, a
// round of it every 10 ms on one instance: the requests served stay within
// the owner's budget (burst + rate × 10 s), its mints within theirs,
// the owner ends with no more key documents than its writes allow, and
// another owner's requests are all served meanwhile. On both stores.
func TestManagementBudgetChains(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		srv := newServer(t, st, slowStore)
		a := newAttacker(t, srv, srv.clock.Now())
		other, _ := srv.mint(t, "globex", func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings} })
		const rounds, step = 1000, 10 * time.Millisecond
		for i := range rounds {
			a.rotate(t, srv)
			a.mintAndRead(t, srv, i)
			if i%10 == 0 {
				bystander(t, srv, other)
			}
			srv.clock.Advance(step)
		}
		secs := int64(rounds * step / time.Second)
		maxServed := keyrules.ManageBurst + keyrules.ManageRate*secs
		maxMints := keyrules.DefaultMintBurst + keyrules.DefaultMintRate*secs
		t.Logf("served %d management calls (budget %d), %d mints (budget %d)", a.served, maxServed, a.mints, maxMints)
		if a.served > maxServed || a.mints > maxMints {
			t.Errorf("served %d management calls and %d mints in %d s; the owner's budget is %d and %d", a.served, a.mints, secs, maxServed, maxMints)
		}
		if a.mints < keyrules.DefaultMintBurst {
			t.Errorf("served %d mints, want at least the burst %d", a.mints, keyrules.DefaultMintBurst)
		}
		if n := ownerDocs(t, st, "acme"); n > 2+int(maxMints) {
			t.Errorf("the owner holds %d key documents, more than its 2 and %d mints", n, maxMints)
		}
	})
}

// TestManagementBudgetOnRedis: the attack for 10 s on two instances sharing
// one redis-server, the chain at one and the tree at the other, a round
// every 10 ms at each: the requests served in all stay within the owner's
// one budget for the time they took, not one budget per instance, and
// another owner's requests at both are all served meanwhile.
func TestManagementBudgetOnRedis(t *testing.T) {
	a, b, st, _ := sharedInstances(t, false, 10*time.Second, store.Plan{Owner: "acme"})
	att := newAttacker(t, a, time.Now())
	other, _ := a.mint(t, "globex", func(k *store.Key) { k.Scopes, k.CreatedAt = []string{scopeKeys, scopeThings}, time.Now() })
	start := time.Now()
	end := start.Add(10 * time.Second)
	var wg sync.WaitGroup
	wg.Go(func() {
		for time.Now().Before(end) {
			att.rotate(t, a)
			time.Sleep(10 * time.Millisecond)
		}
	})
	wg.Go(func() {
		for i := 0; time.Now().Before(end); i++ {
			att.mintAndRead(t, b, i)
			time.Sleep(10 * time.Millisecond)
		}
	})
	wg.Go(func() {
		for time.Now().Before(end) {
			bystander(t, a, other)
			bystander(t, b, other)
			time.Sleep(100 * time.Millisecond)
		}
	})
	wg.Wait()
	window := att.last.Sub(start)
	maxServed := admits(keyrules.ManageRate, keyrules.ManageBurst, window)
	maxMints := admits(keyrules.DefaultMintRate, keyrules.DefaultMintBurst, window)
	t.Logf("served %d management calls (budget %d), %d mints (budget %d) in %v", att.served, maxServed, att.mints, maxMints, window)
	if att.served > maxServed || att.mints > maxMints {
		t.Errorf("two instances served %d management calls and %d mints in %v; the owner's budget is %d and %d",
			att.served, att.mints, window, maxServed, maxMints)
	}
	if att.mints < keyrules.DefaultMintBurst {
		t.Errorf("served %d mints, want at least the burst %d", att.mints, keyrules.DefaultMintBurst)
	}
	if n := ownerDocs(t, st, "acme"); int64(n) > 2+maxMints {
		t.Errorf("the owner holds %d key documents, more than its 2 and %d mints", n, maxMints)
	}
}

// TestMintsPlan: a plan's mint_rate and mint_burst replace
// the defaults: with a burst of 2 at 0.5/s, the third create at once is
// refused (limit management) while reads pass, and one is served 2 s later.
func TestMintsPlan(t *testing.T) {
	srv := newServer(t, nil)
	setPlan(t, srv.store, store.Plan{Owner: "acme", MintRate: 0.5, MintBurst: 2})
	admin, _ := srv.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys} })
	create := func() *httptest.ResponseRecorder {
		return srv.do("POST", "/v1/keys", `{"name":"k","scopes":["keys:manage"]}`, admin)
	}
	for i := range 2 {
		if w := create(); w.Code != http.StatusCreated {
			t.Fatalf("create %d = %d %s", i, w.Code, w.Body)
		}
	}
	w := create()
	if p := testkit.WantProblem(t, w, http.StatusTooManyRequests, "rate_limited"); p.Limit != "management" || w.Header().Get("RateLimit-Limit") != "2" {
		t.Errorf("the third create: %+v, RateLimit-Limit %q; want limit management, 2", p, w.Header().Get("RateLimit-Limit"))
	}
	if w := srv.do("GET", "/v1/keys", "", admin); w.Code != http.StatusOK {
		t.Errorf("a read past the mints = %d, want 200", w.Code)
	}
	srv.clock.Advance(2 * time.Second)
	if w := create(); w.Code != http.StatusCreated {
		t.Errorf("a create 2 s later = %d, want 201", w.Code)
	}
}

// TestManagementWrapped is issue 30's: each key endpoint wrapped in a
// middleware and mounted with Manage is still management. With the
// owner's monthly quota used up, every one is served, under the management
// budget's headers (the mints' for create and rotate), and the
// meter counts none of them; mounted with Protect, the middleware hides it,
// and it answers 500 misconfigured, logged, rather than serve the data
// plane's way.
func TestManagementWrapped(t *testing.T) {
	srv := newServer(t, nil, flushByHand)
	setPlan(t, srv.store, store.Plan{Owner: "acme", MonthlyQuota: 1})
	admin, ak := srv.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeUsage} })
	_, victim := srv.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys} })
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Wrapped", "yes")
			h.ServeHTTP(w, r)
		})
	}
	keys := srv.KeysHandlers()
	endpoints := []struct {
		pattern, target, body string
		h                     http.Handler
		mint                  bool
	}{
		{"GET /v1/keys", "/v1/keys", "", keys.List, false},
		{"GET /v1/keys/{id}", "/v1/keys/" + victim.ID, "", keys.Get, false},
		{"GET /v1/keys/{id}/usage", "/v1/keys/" + victim.ID + "/usage", "", keys.KeyUsage, false},
		{"GET /v1/usage", "/v1/usage", "", keys.Usage, false},
		{"GET /v1/whoami", "/v1/whoami", "", keys.WhoAmI, false},
		{"POST /v1/keys", "/v1/keys", `{"name":"n","scopes":["keys:manage"]}`, keys.Create, true},
		{"POST /v1/keys/{id}/rotate", "/v1/keys/" + victim.ID + "/rotate", `{"grace":"0s"}`, keys.Rotate, true},
		{"DELETE /v1/keys/{id}", "/v1/keys/" + victim.ID, "", keys.Revoke, false},
	}
	managed, protected := http.NewServeMux(), http.NewServeMux()
	things := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	managed.Handle("GET /{$}", srv.Protect("", things))
	for _, e := range endpoints {
		managed.Handle(e.pattern, srv.Manage(scopeKeys, wrap(e.h)))
		protected.Handle(e.pattern, srv.Protect(scopeKeys, wrap(e.h)))
	}
	srv.Handler = srv.Authenticate(managed)
	if w := srv.do("GET", "/", "", admin); w.Code != http.StatusOK {
		t.Fatalf("the data plane's one request = %d", w.Code)
	}
	if w := srv.do("GET", "/", "", admin); w.Code != http.StatusTooManyRequests {
		t.Fatalf("the data plane past the quota = %d, want 429", w.Code)
	}
	keyUsed, ownerUsed := srv.meter.Used(ak.ID, "acme", srv.clock.Now())
	for _, e := range endpoints {
		w := srv.do(strings.Fields(e.pattern)[0], e.target, e.body, admin)
		limit := keyrules.ManageBurst
		if e.mint {
			limit = keyrules.DefaultMintBurst
		}
		if w.Code/100 != 2 || w.Header().Get("X-Wrapped") != "yes" || w.Header().Get("RateLimit-Limit") != strconv.Itoa(limit) {
			t.Errorf("%s wrapped, with the quota used up = %d, RateLimit-Limit %q; want 2xx, %d: %s",
				e.pattern, w.Code, w.Header().Get("RateLimit-Limit"), limit, w.Body)
		}
	}
	if k, o := srv.meter.Used(ak.ID, "acme", srv.clock.Now()); k != keyUsed || o != ownerUsed {
		t.Errorf("the meter counted the management calls: %d, %d before, %d, %d after", keyUsed, ownerUsed, k, o)
	}
	srv.Handler = srv.Authenticate(protected)
	unlimited, _ := srv.mint(t, "globex", func(k *store.Key) { k.Scopes = []string{scopeKeys} })
	for _, e := range endpoints {
		w := srv.do(strings.Fields(e.pattern)[0], e.target, e.body, unlimited)
		testkit.WantProblem(t, w, http.StatusInternalServerError, "misconfigured")
	}
	if !strings.Contains(srv.logs.String(), "Gate.Manage") {
		t.Errorf("no ERROR says to mount it with Gate.Manage:\n%s", srv.logs)
	}
}
