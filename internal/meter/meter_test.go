package meter

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The meter's own mechanics, on a memory store, with no Gate: the tests
// of whole requests through a Gate's meter are in package apikey.

// t0 is the fake clock's start.
var t0 = testkit.T0

func monthTotal(t *testing.T, s store.UsageStore, id string) int64 {
	t.Helper()
	n, err := s.MonthlyUsage(context.Background(), id, store.MonthOf(t0))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMeterFlushInBackground(t *testing.T) {
	st := memstore.New()
	clock := testkit.NewFakeClock()
	log, _ := testkit.Logger()
	m := New(Options{Store: st, Interval: 10 * time.Second, Idle: time.Hour, Now: clock.Now, Log: log})
	admit := func() {
		t.Helper()
		if d, err := m.Admit(Admission{KeyID: "k", Owner: "acme", KeyQuota: 100}, clock.Now()); err != nil || !d.Allowed {
			t.Fatal(d, err)
		}
		m.Done()
	}
	admit()
	if n, _ := st.MonthlyUsage(context.Background(), "k", store.MonthOf(t0)); n != 0 {
		t.Fatalf("flushed before the interval: %d", n)
	}
	clock.Advance(10 * time.Second)
	admit() // starts a flush in the background
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, _ := st.MonthlyUsage(context.Background(), "k", store.MonthOf(t0))
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background flush stored %d, want 2", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.mu.Lock()
	counted, persisted := m.tallies[tallyKey{false, "k"}].counted, m.tallies[tallyKey{false, "k"}].persisted
	m.mu.Unlock()
	if counted != 2 || persisted != 2 {
		t.Errorf("tally = %d counted, %d persisted; want 2, 2", counted, persisted)
	}
}

// faultStore is a memory store whose AddUsage fails as set: down (an
// error, nothing applied), lose (applied, and the answer lost), or hang
// (until its context ends). It counts its AddUsage calls.
type faultStore struct {
	*memstore.Store
	down, lose, hang atomic.Bool
	calls            atomic.Int64
}

func (s *faultStore) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	s.calls.Add(1)
	switch {
	case s.hang.Load():
		<-ctx.Done()
		return ctx.Err()
	case s.down.Load():
		return testkit.ErrStoreDown
	}
	err := s.Store.AddUsage(ctx, instance, seq, counts)
	if err == nil && s.lose.Load() {
		return status.Error(codes.Unavailable, "the answer was lost")
	}
	return err
}

// admitN admits n requests of id at now on m, each answered at once.
func admitN(t testing.TB, m *Meter, id string, quota int64, now time.Time, n int) {
	t.Helper()
	for range n {
		if d, err := m.Admit(Admission{KeyID: id, Owner: "acme", KeyQuota: quota}, now); err != nil || !d.Allowed {
			t.Fatal(d, err)
		}
		m.Done()
	}
}

// TestMeterOutageMergesBatches keeps the store down for an hour of flushes
// with a batch's worth of keys (store.MaxUsageBatch): the meter holds one
// batch in doubt and one count per key and day, not a batch per flush, and
// once the store is back two batches store them all, exactly.
func TestMeterOutageMergesBatches(t *testing.T) {
	st := &faultStore{Store: memstore.New()}
	st.down.Store(true)
	clock := testkit.NewFakeClock()
	log, _ := testkit.Logger()
	m := New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: clock.Now, Log: log})
	keys := store.MaxUsageBatch
	for range 360 { // an hour of 10 s flushes
		for k := range keys {
			admitN(t, m, fmt.Sprint("k", k), 0, clock.Now(), 1)
		}
		if err := m.Flush(context.Background()); err == nil {
			t.Fatal("flush succeeded with the store down")
		}
		clock.Advance(10 * time.Second)
	}
	if pending, _, counters := m.sizes(); pending > keys || counters > keys || m.inDoubt == nil || m.inDoubt.seq != 1 {
		t.Fatalf("after the outage: %d pending counts and %d counters, batch in doubt %v; want at most 100 each and batch 1",
			pending, counters, m.inDoubt != nil)
	}
	st.down.Store(false)
	before := st.calls.Load()
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := st.calls.Load() - before; n != 2 {
		t.Errorf("writing after the outage took %d AddUsage calls, want 2", n)
	}
	for k := range keys {
		if n := monthTotal(t, st, fmt.Sprint("k", k)); n != 360 {
			t.Fatalf("k%d stored %d, want 360", k, n)
		}
	}
}

// TestMeterUnknownOutcomeKeepsBatch: a batch whose outcome is unknown is
// retried as it was, while new counts wait beside it, and nothing is
// counted twice.
func TestMeterUnknownOutcomeKeepsBatch(t *testing.T) {
	st := &faultStore{Store: memstore.New()}
	clock := testkit.NewFakeClock()
	log, _ := testkit.Logger()
	m := New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: clock.Now, Log: log})
	admitN(t, m, "k", 0, clock.Now(), 5)
	st.lose.Store(true)
	for range 3 {
		if err := m.Flush(context.Background()); err == nil {
			t.Fatal("hidden outcome reported as success")
		}
		admitN(t, m, "k", 0, clock.Now(), 2)
	}
	if m.inDoubt == nil || m.inDoubt.seq != 1 {
		t.Fatalf("batch in doubt = %+v, want batch 1 kept", m.inDoubt)
	}
	st.lose.Store(false)
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, st, "k"); n != 11 {
		t.Errorf("stored %d, want 11", n)
	}
}

// TestMeterLostAnswerThenOutage is issue 18's double count: a batch is
// applied and its answer lost, then the store is down, so that the next
// attempt fails before it commits. That failure proves nothing about the
// first attempt: the batch stays in doubt under its seq, and once the store
// is back every request is stored exactly once.
func TestMeterLostAnswerThenOutage(t *testing.T) {
	st := &faultStore{Store: memstore.New()}
	clock := testkit.NewFakeClock()
	log, _ := testkit.Logger()
	m := New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: clock.Now, Log: log})
	admitN(t, m, "k", 0, clock.Now(), 7)
	st.lose.Store(true)
	if err := m.Flush(context.Background()); err == nil {
		t.Fatal("a lost answer reported as success")
	}
	st.lose.Store(false)
	st.down.Store(true)
	for range 3 {
		if err := m.Flush(context.Background()); err == nil {
			t.Fatal("flush succeeded with the store down")
		}
		admitN(t, m, "k", 0, clock.Now(), 1)
	}
	st.down.Store(false)
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, st, "k"); n != 10 {
		t.Errorf("stored %d, want the 10 requests counted, once each", n)
	}
}

// TestMeterMemoryBounded counts 100,000 distinct keys with quotas, of one
// owner: once flushed and idle, the meter holds nothing of them, and a past
// month's tallies go as soon as they are stored.
func TestMeterMemoryBounded(t *testing.T) {
	st := memstore.New()
	clock := testkit.NewFakeClock()
	log, _ := testkit.Logger()
	m := New(Options{Store: st, Interval: time.Hour, Idle: 11 * time.Minute, Now: clock.Now, Log: log})
	for i := range 100_000 {
		admitN(t, m, fmt.Sprint("k", i), 100, clock.Now(), 1)
	}
	if pending, tallies, _ := m.sizes(); pending != 100_000 || tallies != 100_001 {
		t.Fatalf("before flushing: %d pending, %d tallies", pending, tallies)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pending, tallies, _ := m.sizes(); pending != 0 || tallies != 100_001 {
		t.Fatalf("flushed, still in use: %d pending, %d tallies; want 0 and 100001 (the keys' and the owner's)", pending, tallies)
	}
	clock.Advance(11 * time.Minute)
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pending, tallies, _ := m.sizes(); pending != 0 || tallies != 0 {
		t.Fatalf("flushed and idle: %d pending, %d tallies; want 0 and 0", pending, tallies)
	}
	// A key used on the last evening of a month, then in the next.
	clock.Advance(3*24*time.Hour + 11*time.Hour) // 2026-11-30 23:11
	admitN(t, m, "late", 100, clock.Now(), 1)
	clock.Advance(time.Hour) // December
	m.Flush(context.Background())
	if _, tallies, _ := m.sizes(); tallies != 0 {
		t.Errorf("November's tally kept into December: %d tallies", tallies)
	}
}
