package main

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/faultproxy"
)

// Writes whose answer is lost, on the Firestore emulator behind
// faultproxy: each write command, its commit applied and the answer lost,
// refused, or applied with the store down after; the exit status and
// output must match what the store holds.

// lossyHarness is a harness whose commands go through a fault proxy, and
// the store without it, to look at what is stored.
type lossyHarness struct {
	*harness
	proxy  *faultproxy.Proxy
	direct store.Store
}

// newLossyHarness returns a harness on a fresh project with owner acme's
// plan (max_keys 5) and one key of acme, whose ID it returns, made before
// the proxy is put in front.
func newLossyHarness(t *testing.T) (*lossyHarness, string) {
	t.Helper()
	h := newHarness(t)
	h.ok("plan", "set", "acme", "--max-keys", "5")
	id := h.createJSON("--owner", "acme").ID
	fs := firestorestore.New(firestorestore.Config{Project: h.env["GOOGLE_CLOUD_PROJECT"]})
	t.Cleanup(func() { fs.Close() })
	if _, err := fs.Client(t.Context()); err != nil { // on the emulator itself
		t.Fatal(err)
	}
	p, err := faultproxy.Start(h.env["FIRESTORE_EMULATOR_HOST"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	t.Setenv("FIRESTORE_EMULATOR_HOST", p.Addr())
	h.env["FIRESTORE_EMULATOR_HOST"] = p.Addr()
	h.env["STORE_TIMEOUT"] = "2s" // what an outage costs the test
	return &lossyHarness{h, p, store.WithTimeout(fs, 20*time.Second)}, id
}

// cliWrite is a write command on acme's key id, how to tell from the store
// that it took effect, the command its outcome_unknown message names, and
// whether it records a change in the feed: of the key, or of acme's plan.
type cliWrite struct {
	name    string
	args    func(id string) []string
	applied func(t *testing.T, h *lossyHarness, id string, r result) bool
	check   string
	change  store.ChangeKind
}

// acmeKeys is how many keys acme has.
func (h *lossyHarness) acmeKeys(t *testing.T) int {
	page, err := h.direct.ListByOwner(t.Context(), "acme", nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Keys)
}

// printedKeyStored checks that a key create or rotate printed with --json
// is stored.
func (h *lossyHarness) printedKeyStored(t *testing.T, r result) {
	if r.code != 0 {
		return
	}
	var c createdJSON
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("printed %q: %v", r.stdout, err)
	}
	if _, err := h.direct.Get(t.Context(), c.ID); err != nil {
		t.Errorf("the key printed, %s, is not stored: %v", c.ID, err)
	}
}

var cliWrites = []cliWrite{
	{"create", func(string) []string { return []string{"create", "--owner", "acme", "--json"} },
		func(t *testing.T, h *lossyHarness, _ string, r result) bool {
			h.printedKeyStored(t, r)
			return h.acmeKeys(t) == 2
		}, "apikey show ", ""},
	{"create --force", func(string) []string { return []string{"create", "--owner", "acme", "--force", "--json"} },
		func(t *testing.T, h *lossyHarness, _ string, r result) bool {
			h.printedKeyStored(t, r)
			return h.acmeKeys(t) == 2
		}, "apikey show ", ""},
	{"rotate", func(id string) []string { return []string{"rotate", id, "--json"} },
		func(t *testing.T, h *lossyHarness, _ string, r result) bool {
			h.printedKeyStored(t, r)
			return h.acmeKeys(t) == 2
		}, "apikey show ", store.ChangeKey},
	{"revoke", func(id string) []string { return []string{"revoke", id} },
		func(t *testing.T, h *lossyHarness, id string, r result) bool {
			k, err := h.direct.Get(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			return !k.RevokedAt.IsZero()
		}, "apikey show ", store.ChangeKey},
	{"delete", func(id string) []string { return []string{"delete", id} },
		func(t *testing.T, h *lossyHarness, id string, r result) bool {
			_, err := h.direct.Get(t.Context(), id)
			return errors.Is(err, store.ErrKeyNotFound)
		}, "apikey show ", store.ChangeKey},
	{"plan set", func(string) []string { return []string{"plan", "set", "acme", "--max-keys", "7"} },
		func(t *testing.T, h *lossyHarness, _ string, r result) bool {
			p, err := h.direct.GetPlan(t.Context(), "acme")
			return err == nil && p.MaxKeys == 7
		}, "apikey plan show acme", store.ChangeOwner},
	{"plan clear", func(string) []string { return []string{"plan", "clear", "acme"} },
		func(t *testing.T, h *lossyHarness, _ string, r result) bool {
			_, err := h.direct.GetPlan(t.Context(), "acme")
			return errors.Is(err, store.ErrPlanNotFound)
		}, "apikey plan show acme", store.ChangeOwner},
}

// TestWriteCommandAnswerLost: every write command under four faults, and
// the change feed's record of it, made in the same transaction: its
// commit applied and the answer lost (exit 0, as the success it was); its
// commit refused, or the store down from the start (exit 1, nothing
// stored, no doubt expressed); its commit applied, the answer lost and the
// store down after, so that reading back fails too (exit 1, saying that
// the outcome is unknown and how to check).
func TestWriteCommandAnswerLost(t *testing.T) {
	for _, w := range cliWrites {
		for _, c := range []struct {
			name    string
			fault   func(p *faultproxy.Proxy)
			applied bool
			unknown bool
		}{
			{"answer lost", func(p *faultproxy.Proxy) { p.LoseCommitAnswers(1, 0) }, true, false},
			{"commit refused", func(p *faultproxy.Proxy) { p.Set(faultproxy.RefuseCommits) }, false, false},
			{"store down", func(p *faultproxy.Proxy) { p.Set(faultproxy.Unavailable) }, false, false},
			{"answer lost, then down", func(p *faultproxy.Proxy) { p.LoseCommitAnswers(1, time.Minute) }, true, true},
		} {
			t.Run(w.name+"/"+c.name, func(t *testing.T) {
				h, id := newLossyHarness(t)
				_, cursor, err := h.direct.Changes(t.Context(), "", 1)
				if err != nil {
					t.Fatal(err)
				}
				c.fault(h.proxy)
				start := time.Now()
				r := h.run(w.args(id)...)
				t.Logf("exit %d in %v; stderr:\n%s", r.code, time.Since(start).Round(time.Millisecond), r.stderr)
				h.proxy.Set(faultproxy.Up)
				wantCode := 1
				if c.applied && !c.unknown {
					wantCode = 0
				}
				if r.code != wantCode {
					t.Errorf("exit %d, want %d; stderr:\n%s", r.code, wantCode, r.stderr)
				}
				if got := w.applied(t, h, id, r); got != c.applied {
					t.Errorf("the store holds the write: %v, want %v; exit %d, stderr:\n%s", got, c.applied, r.code, r.stderr)
				}
				unknown := strings.Contains(r.stderr, "the store did not confirm whether")
				if unknown != c.unknown || (c.unknown && !strings.Contains(r.stderr, w.check)) {
					t.Errorf("outcome unknown said: %v, want %v, naming %q; stderr:\n%s", unknown, c.unknown, w.check, r.stderr)
				}
				if lost := h.proxy.LostCommits(); lost != map[bool]int64{true: 1}[c.applied] {
					t.Errorf("%d commits applied with their answer lost, want %d", lost, map[bool]int64{true: 1}[c.applied])
				}
				changes, _, err := h.direct.Changes(t.Context(), cursor, 10)
				if err != nil {
					t.Fatal(err)
				}
				want := 0 // the change, recorded in the write's transaction
				if c.applied && w.change != "" {
					want = 1
				}
				if len(changes) != want || (want == 1 && changes[0].Kind != w.change) {
					t.Errorf("the change feed holds %+v; want %d change of kind %q", changes, want, w.change)
				}
			})
		}
	}
}

// TestConcurrentPlanSetAnswersLost: six operators set one owner's plan at
// once, each with a client of its own, while the answers of several
// commits are lost: the plan stored is one whose command succeeded (a
// command whose plan was applied and then replaced may fail, saying the
// plan is not set, but no plan is in force that every command reported
// failed).
func TestConcurrentPlanSetAnswersLost(t *testing.T) {
	h, _ := newLossyHarness(t)
	h.env["STORE_TIMEOUT"] = "5s"
	h.proxy.LoseCommitAnswers(6, 0)
	results := make([]result, 6)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = h.run("plan", "set", "acme", "--max-keys", strconv.Itoa(10+i)) })
	}
	wg.Wait()
	h.proxy.Set(faultproxy.Up)
	p, err := h.direct.GetPlan(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	succeeded := 0
	for i, r := range results {
		if r.code == 0 {
			succeeded++
		} else {
			t.Logf("plan set --max-keys %d: %s", 10+i, r.stderr)
		}
		if p.MaxKeys == 10+i && r.code != 0 && !strings.Contains(r.stderr, "did not confirm") {
			t.Errorf("the stored plan (max_keys %d) is that of a command that failed: %s", p.MaxKeys, r.stderr)
		}
	}
	t.Logf("%d of %d plan sets succeeded; %d commit answers lost; max_keys %d stored", succeeded, len(results), h.proxy.LostCommits(), p.MaxKeys)
	if succeeded == 0 {
		t.Errorf("no plan set succeeded: %+v", results)
	}
}
