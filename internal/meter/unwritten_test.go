package meter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// TestCloseRetriesUntilTheStoreIsBack: the store is down when Close starts
// and back a second later; Close keeps flushing, with backoff, and stores
// every count within its deadline.
func TestCloseRetriesUntilTheStoreIsBack(t *testing.T) {
	st := &faultStore{Store: memstore.New()}
	log, logs := testkit.Logger()
	m := New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: time.Now, Log: log})
	admitN(t, m, "k", 0, time.Now(), 30)
	st.down.Store(true)
	time.AfterFunc(time.Second, func() { st.down.Store(false) })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close = %v, want nil once the store is back", err)
	}
	if n := monthTotalNow(t, st, "k"); n != 30 {
		t.Errorf("stored %d, want 30", n)
	}
	if n := st.calls.Load(); n < 3 || n > 40 {
		t.Errorf("%d AddUsage calls in about a second: want a few retries, with backoff", n)
	}
	if strings.Contains(logs.String(), UnwrittenKey) {
		t.Errorf("logged %s although every count was stored:\n%s", UnwrittenKey, logs)
	}
}

// TestCloseLogsUnwrittenAndReplayRestoresThem is SIGTERM with a store that
// hangs for the whole grace, and one that lost the answer of the batch it
// applied: Close logs the batch in doubt and the counts never sent as
// usage_unwritten entries, and Replay writes exactly what was counted,
// however often it runs.
func TestCloseLogsUnwrittenAndReplayRestoresThem(t *testing.T) {
	for _, lostFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("first batch applied, answer lost %v", lostFirst), func(t *testing.T) {
			st := &faultStore{Store: memstore.New()}
			log, logs := testkit.Logger()
			m := New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: time.Now, Log: log})
			admitN(t, m, "k", 0, time.Now(), 200)
			st.lose.Store(lostFirst)
			st.down.Store(!lostFirst)
			if err := m.Flush(context.Background()); err == nil {
				t.Fatal("flush succeeded")
			}
			st.lose.Store(false)
			st.down.Store(false)
			st.hang.Store(true)
			// 300 more keys, with quotas: more than one batch of counts
			// never sent.
			for i := range 300 {
				admitN(t, m, fmt.Sprint("q", i), 1000, time.Now(), 1)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := m.Close(ctx)
			if err == nil || !strings.Contains(err.Error(), UnwrittenKey) {
				t.Fatalf("Close = %v, want an error that names %s", err, UnwrittenKey)
			}
			batches, err := ReadUnwritten(strings.NewReader(logs.String()))
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + (300+store.MaxUsageBatch-1)/store.MaxUsageBatch; len(batches) != want || batches[0].Seq != 1 {
				t.Fatalf("%d batches logged, the first %d; want %d: batch 1 in doubt, then 300 counts in batches", len(batches), batches[0].Seq, want)
			}
			for _, b := range batches {
				if len(b.Counts) > store.MaxUsageBatch {
					t.Errorf("batch %d holds %d counts, more than a batch", b.Seq, len(b.Counts))
				}
			}
			if !strings.Contains(logs.String(), `"severity":"ERROR"`) {
				t.Errorf("the entries are not ERROR:\n%.500s", logs)
			}
			// Close again: everything went to the log, nothing to the
			// store, and it says so again.
			if err := m.Close(context.Background()); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("usage not written: %d batches logged", len(batches))) {
				t.Errorf("second Close = %v, want the %d batches logged", err, len(batches))
			}
			st.hang.Store(false)
			for range 2 {
				if err := Replay(context.Background(), st, batches); err != nil {
					t.Fatal(err)
				}
				if n := monthTotalNow(t, st, "k"); n != 200 {
					t.Errorf("k stored %d after replay, want 200", n)
				}
				for i := range 300 {
					if n := monthTotalNow(t, st, fmt.Sprint("q", i)); n != 1 {
						t.Fatalf("q%d stored %d after replay, want 1", i, n)
					}
				}
			}
		})
	}
}

// TestConcurrentClosesLogOnce: two Closes at once (the function's own
// SIGTERM handler and cmd/local's) with the store down: each count is
// logged once, and both Closes say that counts were logged.
func TestConcurrentClosesLogOnce(t *testing.T) {
	st := &faultStore{Store: memstore.New()}
	st.down.Store(true)
	log, logs := testkit.Logger()
	m := New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: time.Now, Log: log})
	admitN(t, m, "k", 0, time.Now(), 5)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = m.Close(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), UnwrittenKey) {
			t.Errorf("Close %d = %v, want an error naming %s", i, err, UnwrittenKey)
		}
	}
	if n := strings.Count(logs.String(), `"`+UnwrittenKey+`"`); n != 1 {
		t.Errorf("%d %s entries, want 1", n, UnwrittenKey)
	}
}

// TestReadUnwritten reads the formats an operator has: what `gcloud logging
// read --format=json` prints (an array of entries with jsonPayload), and
// keygate's own stdout lines, mixed with other entries.
func TestReadUnwritten(t *testing.T) {
	batch := func(instance string, seq int64, n int64) Unwritten {
		return Unwritten{Instance: instance, Seq: seq, Counts: []store.UsageCount{{KeyID: "k", Owner: "acme", Day: "2026-12-01", Requests: n}}}
	}
	entry := func(b Unwritten) string {
		p, _ := json.Marshal(map[string]any{"severity": "ERROR", "message": "m", UnwrittenKey: b})
		return string(p)
	}
	gcloud := func(bs ...Unwritten) string {
		var out []string
		for _, b := range bs {
			out = append(out, `{"insertId":"x","jsonPayload":`+entry(b)+`,"severity":"ERROR"}`)
		}
		return "[" + strings.Join(append(out, `{"textPayload":"other"}`), ",\n") + "]"
	}
	for _, c := range []struct {
		name, in string
		want     []Unwritten
		err      string
		lines    []int // of want's entries, when given
	}{
		{"gcloud's JSON, out of order", gcloud(batch("b", 1, 5), batch("a", 2, 3), batch("a", 1, 2)),
			[]Unwritten{batch("a", 1, 2), batch("a", 2, 3), batch("b", 1, 5)}, "", []int{3, 2, 1}},
		{"gcloud's JSON indented", "[\n  " + strings.ReplaceAll(gcloud(batch("a", 1, 2), batch("a", 2, 3))[1:], ",\n", " ,\n\n  "),
			[]Unwritten{batch("a", 1, 2), batch("a", 2, 3)}, "", []int{2, 4}},
		{"stdout lines", `{"severity":"INFO","message":"hello"}` + "\n" + entry(batch("a", 7, 1)) + "\n",
			[]Unwritten{batch("a", 7, 1)}, "", []int{2}},
		{"the same entry twice", entry(batch("a", 1, 2)) + "\n" + entry(batch("a", 1, 2)),
			[]Unwritten{batch("a", 1, 2)}, "", nil},
		{"nothing to replay", `{"message":"hello"}`, nil, "", nil},
		{"one batch, two contents", entry(batch("a", 1, 2)) + "\n" + entry(batch("a", 1, 3)), nil, "appears twice", nil},
		{"no instance", entry(batch("", 1, 2)), nil, "no instance", nil},
		{"a count of zero", entry(batch("a", 1, 0)), nil, "requests of 1 or more", nil},
		{"seq 0", entry(batch("a", 0, 1)), nil, "seq 0", nil},
		{"other lines", "keygate: stopped\n{\"message\":\nlocal: usage not written: 1 batch logged as usage_unwritten\n" + entry(batch("a", 1, 2)),
			[]Unwritten{batch("a", 1, 2)}, "", nil},
		{"a cut entry", entry(batch("a", 1, 2))[:60], nil, "line 1: an entry with usage_unwritten that is not whole JSON", nil},
		{"a bad array", "[{]", nil, "not a JSON array", nil},
		{"an array, then more", gcloud(batch("a", 1, 2)) + "{}", nil, "not a JSON array", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadUnwritten(strings.NewReader(c.in))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ReadUnwritten = %v, %v; want an error with %q", got, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var lines []int
			for i := range got {
				lines = append(lines, got[i].Line)
				got[i].Line = 0
			}
			if c.lines != nil && !slices.Equal(lines, c.lines) {
				t.Errorf("lines %v, want %v", lines, c.lines)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("ReadUnwritten = %v, want %v", got, c.want)
			}
		})
	}
}

// TestReplayStopsAtTheFirstError names the batch that failed.
func TestReplayStopsAtTheFirstError(t *testing.T) {
	st := &faultStore{Store: memstore.New()}
	st.down.Store(true)
	err := Replay(context.Background(), st, []Unwritten{{Instance: "i", Seq: 3, Counts: []store.UsageCount{{KeyID: "k", Day: "2026-12-01", Requests: 1}}}})
	if !errors.Is(err, testkit.ErrStoreDown) || !strings.Contains(err.Error(), "instance i batch 3") {
		t.Errorf("Replay = %v, want the store's error naming instance i batch 3", err)
	}
}

func monthTotalNow(t *testing.T, s store.UsageStore, id string) int64 {
	t.Helper()
	n, err := s.MonthlyUsage(context.Background(), id, store.MonthOf(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
