package apikey

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
)

// Concurrent writers on the Firestore emulator: two instances (two Gates,
// each with a Firestore client of its own, on one project), many writes at
// once. Before the change feed lost its counter document, 2 revocations at
// once failed in 5 rounds of 8; these are the counts the issue asked for.

// answerBound is the longest a write may take to be answered: the default
// STORE_TIMEOUT, which every store call is bounded by anyway.
const answerBound = 2 * time.Second

// deployedInstances are two real-clock servers on a new emulator project,
// each with a Firestore client of its own, configured as deployed: the
// default STORE_TIMEOUT of 2 s, within which contended writes must get
// through.
func deployedInstances(t testing.TB) (a, b *server) {
	t.Helper()
	_, project := emulator.Project(t)
	instance := func() *server {
		s := firestorestore.New(firestorestore.Config{Project: project})
		t.Cleanup(func() { s.Close() })
		return buildServer(t, s, testConfig(), nil)
	}
	return instance(), instance()
}

// warmUp serves GET / with key on s until it is answered 200: the
// emulator's first calls on a project, on a cold JVM, can outlast 2 s.
func warmUp(t testing.TB, s *server, key string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		w := s.do("GET", "/", "", key)
		if w.Code == 200 {
			return
		}
		if w.Code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("warm-up = %d %s", w.Code, w.Body)
		}
	}
}

// TestConcurrentRevokesOnEmulator: 50 keys of one owner, each cached by
// both instances, revoked at once, half through each: every revocation is
// answered 204 within 2 s, and every key is refused by both instances
// within 2 s of its answer (plus slack for a loaded machine).
func TestConcurrentRevokesOnEmulator(t *testing.T) {
	a, b := deployedInstances(t)
	manager, _ := a.manager(t, "acme")
	const n = 50
	keys := make([]string, n)
	ids := make([]string, n)
	for i := range n {
		var k store.Key
		keys[i], k = a.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
		ids[i] = k.ID
	}
	for _, s := range []*server{a, b} {
		warmUp(t, s, manager)
		for _, key := range keys {
			warmUp(t, s, key)
		}
	}
	answered := make([]time.Time, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, id := range ids {
		via := []*server{a, b}[i%2]
		wg.Go(func() {
			w := via.call("DELETE", "/v1/keys/"+id, manager, "")
			answered[i] = time.Now()
			if w.Code != http.StatusNoContent {
				t.Errorf("revocation %d = %d %s, want 204", i, w.Code, w.Body)
			}
			if took := answered[i].Sub(start); took > answerBound {
				t.Errorf("revocation %d answered after %v, want within %v", i, took, answerBound)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Poll both instances every 50 ms, as requests would come.
	refused := [2][n]time.Time{}
	for deadline := time.Now().Add(propagationBound + time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		left := 0
		for j, s := range []*server{a, b} {
			for i, key := range keys {
				if !refused[j][i].IsZero() {
					continue
				}
				switch w := s.do("GET", "/", "", key); w.Code {
				case 401:
					refused[j][i] = time.Now()
				case 200:
					left++
				default:
					t.Fatalf("GET / with revoked key %d = %d %s", i, w.Code, w.Body)
				}
			}
		}
		if left == 0 {
			break
		}
	}
	var worst time.Duration
	for j := range 2 {
		for i := range n {
			if refused[j][i].IsZero() {
				t.Errorf("instance %d still accepts revoked key %d", j, i)
				continue
			}
			if d := refused[j][i].Sub(answered[i]); d > propagationBound {
				t.Errorf("instance %d refused key %d %v after its revocation's answer, want within %v", j, i, d, propagationBound)
			} else {
				worst = max(worst, d)
			}
		}
	}
	t.Logf("50 revocations answered in %v; refused everywhere at most %v after their answers", slices.MaxFunc(answered, func(x, y time.Time) int { return x.Compare(y) }).Sub(start), worst)
}

// TestConcurrentCreatesOneOwnerOnEmulator: 8 creates at once for one owner
// with a cap of 50, 4 through each instance: all are answered 201, and the
// owner holds exactly the keys answered (and the caller's).
func TestConcurrentCreatesOneOwnerOnEmulator(t *testing.T) {
	a, b := deployedInstances(t)
	if err := a.store.SetPlan(context.Background(), store.Plan{Owner: "acme", MaxKeys: 50}); err != nil {
		t.Fatal(err)
	}
	manager, mk := a.manager(t, "acme")
	warmUp(t, a, manager)
	warmUp(t, b, manager)
	created := concurrentCreates(t, 8, func(i int) (*server, string) { return []*server{a, b}[i%2], manager })
	page, err := a.store.ListByOwner(context.Background(), "acme", nil, store.MaxPageLimit)
	if err != nil {
		t.Fatal(err)
	}
	stored := keyIDsOf(page.Keys)
	want := append(created, mk.ID)
	slices.Sort(want)
	if !slices.Equal(stored, want) {
		t.Errorf("the owner holds %v, want the caller's key and the %d answered 201: %v", stored, len(created), want)
	}
}

// TestConcurrentCreatesManyOwnersOnEmulator: 16 creates at once on one
// instance, each for an owner of its own: all are answered 201.
func TestConcurrentCreatesManyOwnersOnEmulator(t *testing.T) {
	a, _ := deployedInstances(t)
	managers := make([]string, 16)
	for i := range managers {
		managers[i], _ = a.manager(t, fmt.Sprintf("owner-%d", i))
		warmUp(t, a, managers[i])
	}
	concurrentCreates(t, len(managers), func(i int) (*server, string) { return a, managers[i] })
}

// concurrentCreates sends n POST /v1/keys at once, the i-th through the
// server and with the key via(i) says, and checks that each is answered
// 201 within answerBound; it returns the IDs of the keys created.
func concurrentCreates(t *testing.T, n int, via func(i int) (*server, string)) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	start := time.Now()
	defer func() { t.Logf("%d creates answered within %v", n, time.Since(start)) }()
	for i := range n {
		s, key := via(i)
		wg.Go(func() {
			w := s.call("POST", "/v1/keys", key, fmt.Sprintf(`{"name":"concurrent %d","scopes":["%s"]}`, i, scopeThings))
			if took := time.Since(start); took > answerBound {
				t.Errorf("create %d answered after %v, want within %v", i, took, answerBound)
			}
			if w.Code != http.StatusCreated {
				t.Errorf("create %d = %d %s, want 201", i, w.Code, w.Body)
				return
			}
			var v struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v.ID == "" {
				t.Errorf("create %d answered %s: %v", i, w.Body, err)
			}
			ids[i] = v.ID
		})
	}
	wg.Wait()
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == "" })
	slices.Sort(ids)
	return ids
}

// TestBrokenFeedOnEmulator: with the change feed emptied by hand, a key
// revoked through a is still refused by b within the bound, and b logs a
// WARNING that it started over.
func TestBrokenFeedOnEmulator(t *testing.T) {
	_, project := emulator.Project(t)
	a, b := realInstance(t, project), realInstance(t, project)
	key, k := warm(t, a, b)
	// A change, so that b's cursor holds one the emptying takes away.
	if err := a.store.SetPlan(context.Background(), store.Plan{Owner: "other", MaxKeys: 3}); err != nil {
		t.Fatal(err)
	}
	if at := busyUntilRefused(t, b, key, 1500*time.Millisecond); !at.IsZero() {
		t.Fatal("refused before the change")
	}
	emptyFeed(t, project)
	if w := a.call("DELETE", "/v1/keys/"+k.ID, key, ""); w.Code != http.StatusNoContent {
		t.Fatalf("revoke = %d %s", w.Code, w.Body)
	}
	changed := time.Now()
	refused := busyUntilRefused(t, b, key, propagationBound)
	if refused.IsZero() {
		t.Fatalf("b still accepted the revoked key %v after the feed was emptied", propagationBound)
	}
	t.Logf("refused %v after the revocation's answer", refused.Sub(changed))
	if logs := b.logs.String(); !strings.Contains(logs, `"severity":"WARNING","message":"change feed broken`) {
		t.Errorf("b did not warn that it started over:\n%s", logs)
	}
}

// emptyFeed deletes every document of the change feed of project, as an
// operator might by hand.
func emptyFeed(t *testing.T, project string) {
	t.Helper()
	ctx := context.Background()
	client, err := firestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	snaps, err := client.Collection("api_keys_changes").Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) == 0 {
		t.Fatal("no change documents to delete")
	}
	for _, snap := range snaps {
		if _, err := snap.Ref.Delete(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// keyIDsOf are the keys' IDs, sorted.
func keyIDsOf(keys []store.Key) []string {
	ids := []string{}
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestSameKeyRevokedTwiceOnEmulator: a key revoked through both instances
// at once (its holder and an operator, say), 5 rounds: both answers are 204
// within 2 s, and the key is revoked. (In a transaction, each would wait
// for the other's lock on the key, and the emulator times such waits out
// after seconds: before, both failed.)
func TestSameKeyRevokedTwiceOnEmulator(t *testing.T) {
	a, b := deployedInstances(t)
	manager, _ := a.manager(t, "acme")
	warmUp(t, a, manager)
	warmUp(t, b, manager)
	for round := range 5 {
		_, k := a.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
		var wg sync.WaitGroup
		start := time.Now()
		for _, s := range []*server{a, b} {
			wg.Go(func() {
				w := s.call("DELETE", "/v1/keys/"+k.ID, manager, "")
				if w.Code != http.StatusNoContent {
					t.Errorf("round %d: revocation = %d %s, want 204", round, w.Code, w.Body)
				}
				if took := time.Since(start); took > answerBound {
					t.Errorf("round %d: revocation answered after %v, want within %v", round, took, answerBound)
				}
			})
		}
		wg.Wait()
		if got, err := a.store.Get(context.Background(), k.ID); err != nil || got.RevokedAt.IsZero() {
			t.Errorf("round %d: the key after two revocations = %+v, %v; want it revoked", round, got, err)
		}
	}
}
