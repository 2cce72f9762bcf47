package meter

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// TestCheckReplay: a batch is written with the counts that pass, a batch
// the store holds is not written but its counts still checked, batches
// follow the last one applied without a gap, and an instance's sum of a
// key's day is bounded across batches.
func TestCheckReplay(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	now := testkit.T0
	today := store.DayOf(now)
	if err := st.Create(ctx, store.Key{ID: "k", Owner: "acme", CreatedAt: now.Add(-48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddUsage(ctx, "i", 3, []store.UsageCount{{KeyID: "k", Owner: "acme", Day: today, Requests: 1}}); err != nil {
		t.Fatal(err)
	}
	good := store.UsageCount{KeyID: "k", Owner: "acme", Day: today, Requests: 2}
	foreign := store.UsageCount{KeyID: "k", Owner: "globex", Day: today, Requests: 7}
	big := store.UsageCount{KeyID: "k", Owner: "acme", Day: today, Requests: MaxReplayRequests / 2}
	batches := []Unwritten{
		{Instance: "i", Seq: 3, Counts: []store.UsageCount{good, foreign}, Line: 1},                                        // held, foreign refused
		{Instance: "i", Seq: 4, Counts: []store.UsageCount{good, foreign}, Line: 2},                                        // written with good
		{Instance: "i", Seq: 5, Counts: []store.UsageCount{foreign}, Line: 3},                                              // nothing to write
		{Instance: "i", Seq: 7, Counts: []store.UsageCount{good}, Line: 4},                                                 // past a gap
		{Instance: "j", Seq: 1, Counts: []store.UsageCount{big, big, good}, Line: 5},                                       // good goes over the sum
		{Instance: "j", Seq: 2, Counts: []store.UsageCount{{KeyID: "k", Owner: "acme", Day: today, Requests: 1}}, Line: 6}, // over it still
	}
	plan, err := CheckReplay(ctx, st, batches, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	for _, b := range plan.Write {
		written = append(written, fmt.Sprintf("%s:%d:%d", b.Instance, b.Seq, len(b.Counts)))
	}
	if got, want := strings.Join(written, " "), "i:4:1 j:1:2"; got != want {
		t.Errorf("written (instance:seq:counts) %q, want %q", got, want)
	}
	if len(plan.Held) != 1 || plan.Held[0].Seq != 3 || len(plan.Held[0].Counts) != 1 {
		t.Errorf("held %+v, want batch 3 with its one good count", plan.Held)
	}
	var refused []string
	for _, r := range plan.Refused {
		refused = append(refused, r.String())
	}
	for i, want := range []string{
		"line 1: instance i batch 3: key k, day " + string(today) + ", requests 7: the key belongs to another owner than \"globex\"",
		"line 2: instance i batch 4: key k",
		"line 3: instance i batch 5: key k",
		"line 4: instance i batch 7: the store applied this instance's batches up to 5, and batch 6 is not in the file",
		"line 5: instance j batch 1: key k, day " + string(today) + ", requests 2: more than 864000000 requests",
		"line 6: instance j batch 2: key k",
	} {
		if i >= len(refused) || !strings.HasPrefix(refused[i], want) {
			t.Errorf("refusal %d: %q, want it to start %q (all: %q)", i, refused[min(i, len(refused)-1)], want, refused)
		}
	}
	if len(refused) != 6 {
		t.Errorf("%d refusals, want 6: %q", len(refused), refused)
	}
	if _, err := CheckReplay(ctx, appliedDown{st}, batches, now, time.Minute); err == nil {
		t.Error("CheckReplay with the store down: no error")
	}
}

// appliedDown is a store whose AppliedSeq fails.
type appliedDown struct{ *memstore.Store }

func (appliedDown) AppliedSeq(context.Context, string) (int64, error) { return 0, testkit.ErrStoreDown }
