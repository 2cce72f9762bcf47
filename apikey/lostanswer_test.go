package apikey

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/faultproxy"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// Writes whose answer is lost, on the Firestore emulator behind
// faultproxy: a key write through the keys API is applied and its answer
// lost, or refused at its commit, or applied with its answer lost and the
// store down after; the answer must match what the store holds.

// lossyFixture is a Gate on the emulator through a fault proxy, the store
// without the proxy (to look at what is stored), a second Gate on that
// store (another instance), and a caller key both Gates have cached.
type lossyFixture struct {
	project   string
	proxy     *faultproxy.Proxy
	direct    store.Store
	a, b      *server
	caller    string // may manage acme's keys
	target    string // another key of acme, cached by b
	targetKey store.Key
}

// newLossyFixture builds a lossyFixture on a project of the test's own. The
// Gate's store timeout is short, so that an outage costs the test little;
// change changes the Gate's configuration.
func newLossyFixture(t *testing.T, change ...func(*Config)) *lossyFixture {
	t.Helper()
	host, project := emulator.Project(t)
	f := &lossyFixture{project: project}
	b := realInstance(t, project) // its client is made by its first call, on the emulator itself
	f.direct = store.WithTimeout(b.store.Store, 20*time.Second)
	f.caller, _ = b.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings} })
	f.target, f.targetKey = b.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
	for _, key := range []string{f.caller, f.target} {
		if w := b.do("GET", "/", "", key); w.Code != 200 {
			t.Fatalf("warm-up on b = %d %s", w.Code, w.Body)
		}
	}
	var err error
	if f.proxy, err = faultproxy.Start(host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.proxy.Close() })
	t.Setenv("FIRESTORE_EMULATOR_HOST", f.proxy.Addr())
	proxied := firestorestore.New(firestorestore.Config{Project: project})
	t.Cleanup(func() { proxied.Close() })
	f.a = newRealServer(t, proxied, append([]func(*Config){func(c *Config) { c.StoreTimeout = 2 * time.Second }}, change...)...)
	for try := 0; ; try++ { // the proxied client's first calls can be slow
		w := f.a.call("GET", "/v1/keys/"+f.targetKey.ID, f.caller, "")
		if w.Code == 200 {
			break
		}
		if try == 5 {
			t.Fatalf("warm-up through the proxy = %d %s", w.Code, w.Body)
		}
	}
	f.b = b
	return f
}

// lossyWrite is a write of the keys API, and what the store holds once it
// took effect.
type lossyWrite struct {
	name string
	do   func(f *lossyFixture) *httptest.ResponseRecorder
	want int // the status of the write that took effect
	// applied reports whether the write took effect, from the store, given
	// its answer when it was a success.
	applied func(t *testing.T, f *lossyFixture, w *httptest.ResponseRecorder) bool
}

var lossyWrites = []lossyWrite{
	{"create", func(f *lossyFixture) *httptest.ResponseRecorder {
		return f.a.call("POST", "/v1/keys", f.caller, `{"name":"new","scopes":["things:check"]}`)
	}, http.StatusCreated, func(t *testing.T, f *lossyFixture, w *httptest.ResponseRecorder) bool {
		keys := f.ownerKeys(t)
		if w.Code == http.StatusCreated {
			var v view.NewKeyView
			json.Unmarshal(w.Body.Bytes(), &v)
			if _, err := f.direct.Get(t.Context(), v.ID); err != nil {
				t.Errorf("created key %s answered 201 is not stored: %v", v.ID, err)
			}
		}
		return len(keys) == 3
	}},
	{"rotate", func(f *lossyFixture) *httptest.ResponseRecorder {
		return f.a.call("POST", "/v1/keys/"+f.targetKey.ID+"/rotate", f.caller, `{"grace":"1h"}`)
	}, http.StatusCreated, func(t *testing.T, f *lossyFixture, w *httptest.ResponseRecorder) bool {
		old, err := f.direct.Get(t.Context(), f.targetKey.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w.Code == http.StatusCreated {
			var v view.RotatedKeyView
			json.Unmarshal(w.Body.Bytes(), &v)
			if _, err := f.direct.Get(t.Context(), v.ID); err != nil || !v.Replaces.ExpiresAt.Equal(old.ExpiresAt) {
				t.Errorf("rotation answered 201 (new key %s, old expiring %v) is not what is stored (%v, old expiring %v)",
					v.ID, v.Replaces.ExpiresAt, err, old.ExpiresAt)
			}
		}
		return len(f.ownerKeys(t)) == 3 && !old.ExpiresAt.IsZero()
	}},
	{"revoke", func(f *lossyFixture) *httptest.ResponseRecorder {
		return f.a.call("DELETE", "/v1/keys/"+f.targetKey.ID, f.caller, "")
	}, http.StatusNoContent, func(t *testing.T, f *lossyFixture, w *httptest.ResponseRecorder) bool {
		k, err := f.direct.Get(t.Context(), f.targetKey.ID)
		if err != nil {
			t.Fatal(err)
		}
		return !k.RevokedAt.IsZero()
	}},
}

// ownerKeys are acme's stored keys.
func (f *lossyFixture) ownerKeys(t *testing.T) []store.Key {
	t.Helper()
	page, err := f.direct.ListByOwner(t.Context(), "acme", nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	return page.Keys
}

// TestWriteAnswerLost: every key write of the API, on the emulator, under
// three faults: its commit applied and the answer lost (answered as the
// success it was); its commit refused (answered 503 store_unavailable,
// nothing stored); its commit applied, the answer lost and the store down
// after, so that reading back fails too (answered 503 outcome_unknown,
// never a success the store does not hold nor a plain failure).
func TestWriteAnswerLost(t *testing.T) {
	for _, write := range lossyWrites {
		for _, c := range []struct {
			name     string
			fault    func(p *faultproxy.Proxy)
			applied  bool
			want     int
			wantCode string
		}{
			{"answer lost", func(p *faultproxy.Proxy) { p.LoseCommitAnswers(1, 0) }, true, write.want, ""},
			{"commit refused", func(p *faultproxy.Proxy) { p.Set(faultproxy.RefuseCommits) }, false, 503, "store_unavailable"},
			{"answer lost, then down", func(p *faultproxy.Proxy) { p.LoseCommitAnswers(1, time.Minute) }, true, 503, "outcome_unknown"},
		} {
			t.Run(write.name+"/"+c.name, func(t *testing.T) {
				f := newLossyFixture(t)
				c.fault(f.proxy)
				w := write.do(f)
				f.proxy.Set(faultproxy.Up)
				if w.Code != c.want || (c.wantCode != "" && testkit.Problem(t, w).Code != c.wantCode) {
					t.Errorf("answer %d %s, want %d %s", w.Code, w.Body, c.want, c.wantCode)
				}
				if got := write.applied(t, f, w); got != c.applied {
					t.Errorf("the store holds the write: %v, want %v (answer %d)", got, c.applied, w.Code)
				}
				if lost := f.proxy.LostCommits(); lost != map[bool]int64{true: 1}[c.applied] {
					t.Errorf("%d commits applied with their answer lost, want %d", lost, map[bool]int64{true: 1}[c.applied])
				}
				if c.wantCode == "outcome_unknown" && write.name == "create" && !strings.Contains(testkit.Problem(t, w).Detail, f.ownerKeys(t)[0].ID) {
					t.Errorf("the outcome_unknown of a create does not name the key to look for: %s", w.Body)
				}
			})
		}
	}
}

// TestRevokeAnswerLostReachesOtherInstances: a revocation confirmed after
// its answer was lost was recorded in the change feed with it (one
// transaction), so another instance that has the key cached refuses it
// within the feed's promise.
func TestRevokeAnswerLostReachesOtherInstances(t *testing.T) {
	f := newLossyFixture(t)
	f.proxy.LoseCommitAnswers(1, 0)
	if w := f.a.call("DELETE", "/v1/keys/"+f.targetKey.ID, f.caller, ""); w.Code != http.StatusNoContent {
		t.Fatalf("revoke with its answer lost = %d %s, want 204", w.Code, w.Body)
	}
	if f.proxy.LostCommits() != 1 {
		t.Fatalf("no commit answer was lost")
	}
	if busyUntilRefused(t, f.b, f.target, propagationBound).IsZero() {
		t.Errorf("the other instance still serves the key %v after the revocation", propagationBound)
	}
}

// TestWriteAnswerLostFake is TestWriteAnswerLost on the memory store behind
// testkit.LostAnswerStore, fast: each key write of the API with its answer
// lost is answered as the success it was, and audited; dropped, 503
// store_unavailable; with its answer lost and the reads failing after, 503
// outcome_unknown.
func TestWriteAnswerLostFake(t *testing.T) {
	writes := []struct {
		name   string
		do     func(s *server, caller string, target store.Key) *httptest.ResponseRecorder
		want   int
		action string // its audit entry's
	}{
		{"create", func(s *server, caller string, _ store.Key) *httptest.ResponseRecorder {
			return s.call("POST", "/v1/keys", caller, `{"name":"new","scopes":["things:check"]}`)
		}, http.StatusCreated, "create"},
		{"rotate", func(s *server, caller string, target store.Key) *httptest.ResponseRecorder {
			return s.call("POST", "/v1/keys/"+target.ID+"/rotate", caller, "")
		}, http.StatusCreated, "rotate"},
		{"revoke", func(s *server, caller string, target store.Key) *httptest.ResponseRecorder {
			return s.call("DELETE", "/v1/keys/"+target.ID, caller, "")
		}, http.StatusNoContent, "revoke"},
	}
	for _, w := range writes {
		for _, c := range []struct {
			name     string
			fault    func(s *testkit.LostAnswerStore)
			applied  bool
			want     int
			wantCode string
		}{
			{"answer lost", func(s *testkit.LostAnswerStore) { s.Lose.Store(1) }, true, w.want, ""},
			{"dropped", func(s *testkit.LostAnswerStore) { s.Drop.Store(1) }, false, 503, "store_unavailable"},
			{"answer lost, then down", func(s *testkit.LostAnswerStore) { s.DownAfterLoss.Store(true); s.Lose.Store(1) }, true, 503, "outcome_unknown"},
		} {
			t.Run(w.name+"/"+c.name, func(t *testing.T) {
				lossy := &testkit.LostAnswerStore{Store: memstore.New()}
				s := newServer(t, lossy)
				caller, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings} })
				_, target := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
				if r := s.call("GET", "/v1/keys", caller, ""); r.Code != 200 {
					t.Fatalf("warm-up = %d %s", r.Code, r.Body)
				}
				before := countWrites(t, lossy.Store)
				c.fault(lossy)
				r := w.do(s, caller, target)
				if r.Code != c.want || (c.wantCode != "" && testkit.Problem(t, r).Code != c.wantCode) {
					t.Errorf("answer %d %s, want %d %s", r.Code, r.Body, c.want, c.wantCode)
				}
				if applied := countWrites(t, lossy.Store) != before; applied != c.applied {
					t.Errorf("the store holds the write: %v, want %v", applied, c.applied)
				}
				if audited := strings.Contains(s.logs.String(), `"action":"`+w.action+`"`); audited != (r.Code == w.want) {
					t.Errorf("audited %v, answered %d:\n%s", audited, r.Code, s.logs)
				}
			})
		}
	}
}

// countWrites sums what the writes change in acme's keys: how many there
// are, and how many are revoked or have an expiry.
func countWrites(t *testing.T, s store.Store) int {
	t.Helper()
	page, err := s.ListByOwner(context.Background(), "acme", nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	n := len(page.Keys)
	for _, k := range page.Keys {
		if !k.RevokedAt.IsZero() || !k.ExpiresAt.IsZero() {
			n += 10
		}
	}
	return n
}

// TestConcurrentCreatesAnswersLost: two instances, each with a client of
// its own through one proxy, create keys for one owner at once while the
// answers of several commits are lost: every key answered 201 is stored,
// and every other stored key was answered outcome_unknown, naming it. No key
// is stored whose secret nobody received without its caller being told.
func TestConcurrentCreatesAnswersLost(t *testing.T) {
	// Creates of one owner from two clients contend in the emulator: a
	// longer timeout lets some succeed on a loaded machine.
	timeout := func(c *Config) { c.StoreTimeout = 5 * time.Second }
	f := newLossyFixture(t, timeout)
	second := firestorestore.New(firestorestore.Config{Project: f.project}) // through the proxy too
	t.Cleanup(func() { second.Close() })
	b := newRealServer(t, second, timeout)
	if w := b.call("GET", "/v1/keys", f.caller, ""); w.Code != 200 {
		t.Fatalf("warm-up of the second instance = %d %s", w.Code, w.Body)
	}
	const each = 6
	f.proxy.LoseCommitAnswers(4, 0)
	answers := make(chan *httptest.ResponseRecorder, 2*each)
	var wg sync.WaitGroup
	for _, s := range []*server{f.a, b} {
		for range each {
			wg.Go(func() { answers <- s.call("POST", "/v1/keys", f.caller, `{"name":"new","scopes":["things:check"]}`) })
		}
	}
	wg.Wait()
	close(answers)
	f.proxy.Set(faultproxy.Up)
	created, unknown := map[string]bool{}, []string{}
	for w := range answers {
		switch {
		case w.Code == http.StatusCreated:
			var v view.NewKeyView
			json.Unmarshal(w.Body.Bytes(), &v)
			created[v.ID] = true
		case w.Code == 503 && testkit.Problem(t, w).Code == "outcome_unknown":
			unknown = append(unknown, testkit.Problem(t, w).Detail)
		default:
			t.Logf("create = %d %s", w.Code, w.Body)
		}
	}
	stored := map[string]bool{}
	for _, k := range f.ownerKeys(t) {
		if k.Name != "new" {
			continue
		}
		stored[k.ID] = true
		if !created[k.ID] && !slices.ContainsFunc(unknown, func(d string) bool { return strings.Contains(d, k.ID) }) {
			t.Errorf("key %s is stored, but its create was answered neither 201 nor outcome_unknown", k.ID)
		}
	}
	for id := range created {
		if !stored[id] {
			t.Errorf("key %s was answered 201 and is not stored", id)
		}
	}
	t.Logf("%d creates: %d answered 201, %d outcome_unknown, %d stored; %d commit answers lost", 2*each, len(created), len(unknown), len(stored), f.proxy.LostCommits())
}
