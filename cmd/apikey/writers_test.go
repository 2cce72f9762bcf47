package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// TestConcurrentPlanSets: 20 `apikey plan set` at once for different
// owners, each run with a Firestore client of its own, as 20 processes of
// the CLI: every one succeeds, and every plan is stored. Before the change
// feed lost its counter document, each read and wrote it, and 19 of 20
// failed within the deployed STORE_TIMEOUT of 2 s (bench/cli-writers.sh,
// which measures this with 2 s). Here STORE_TIMEOUT is the harness's: each
// run is a new client's first call, which the whole suite under -race on
// two cores delays past 2 s (seen: 3.4 s for a read).
func TestConcurrentPlanSets(t *testing.T) {
	h := newHarness(t)
	h.realRun("plan", "set", "warm-up", "--max-keys", "1") // the emulator's first call on a project is slow
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run(h.t.Context(), []string{"plan", "set", fmt.Sprintf("owner-%d", i), "--max-keys", fmt.Sprint(i + 1)},
				&stdout, &stderr, h.environ(), time.Now)
			if code != 0 {
				t.Errorf("plan set %d: exit %d after %v: %s", i, code, time.Since(start), stderr.String())
			}
		})
	}
	wg.Wait()
	for i := range n {
		out := h.realRun("plan", "show", fmt.Sprintf("owner-%d", i), "--json")
		if want := fmt.Sprintf(`"max_keys":%d`, i+1); !strings.Contains(strings.ReplaceAll(out, " ", ""), want) {
			t.Errorf("plan show owner-%d = %s, want %s", i, out, want)
		}
	}
}

// TestBusyStore: a write that contention kept out until STORE_TIMEOUT says
// so, that nothing changed, and what to do; not that the emulator is
// missing.
func TestBusyStore(t *testing.T) {
	busy := fmt.Errorf("firestore: revoke key: %w (9 attempts): rpc error: code = Aborted desc = Transaction lock timeout.", store.ErrBusy)
	code, _, stderr, _ := runFake(t, busy, "revoke", strings.Repeat("0", 64))
	if code != 1 || !strings.Contains(stderr, "busy") || !strings.Contains(stderr, "nothing was changed: run the command again") ||
		strings.Contains(stderr, "no Firestore emulator") {
		t.Errorf("exit %d, stderr %q; want 1 and the store busy, nothing changed, run again", code, stderr)
	}
	if !errors.Is(busy, store.ErrBusy) {
		t.Fatal("the busy error is not ErrBusy")
	}
}
