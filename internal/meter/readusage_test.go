package meter

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// ReadUsage holds no lock across its read of the store, and stays exact:
// each request admitted before it is in the store or in its counts, once.

// heldStore is a memory store whose AddUsage, while held is open, waits
// for it to close before it applies the batch; entered is told of each
// such call.
type heldStore struct {
	*memstore.Store
	held, entered chan struct{}
}

func (s *heldStore) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	if s.held != nil {
		s.entered <- struct{}{}
		<-s.held
	}
	return s.Store.AddUsage(ctx, instance, seq, counts)
}

// readTotal is ReadUsage of the key id of owner, its read calling before
// first: the key's total for t0's month as the store holds it, plus this
// instance's counts not in the store.
func readTotal(t *testing.T, m *Meter, st store.UsageStore, id, owner string, before func()) int64 {
	t.Helper()
	var stored int64
	unstored, _, err := m.ReadUsage(context.Background(), id, owner, func(ctx context.Context) (err error) {
		if before != nil {
			before()
		}
		stored, err = st.MonthlyUsage(ctx, id, store.MonthOf(t0))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return stored + unstored[store.DayOf(t0)]
}

func newMeter(st store.UsageStore) *Meter {
	log, _ := testkit.Logger()
	return New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: testkit.NewFakeClock().Now, Log: log})
}

// TestReadUsageBlockedReadsWaitForNoOne: 10 reads of one owner's key hang
// in the store; another owner's read completes meanwhile, and so does a
// flush of the hanging key's counts. Released, the hanging reads see the
// flush commit during their read, and read again: each answers 5, once.
func TestReadUsageBlockedReadsWaitForNoOne(t *testing.T) {
	st := memstore.New()
	m := newMeter(st)
	admitN(t, m, "k", 0, t0, 5)
	if d, err := m.Admit(Admission{KeyID: "other", Owner: "else"}, t0); err != nil || !d.Allowed {
		t.Fatal(d, err)
	}
	m.Done()
	release := make(chan struct{})
	var blocked atomic.Int64
	var once [10]sync.Once
	totals := make(chan int64, 10)
	for i := range 10 {
		go func() {
			totals <- readTotal(t, m, st, "k", "acme", func() {
				once[i].Do(func() { blocked.Add(1); <-release }) // the first read only
			})
		}()
	}
	testkit.WaitFor(t, "10 reads in the store at once", func() bool { return blocked.Load() == 10 })
	done := make(chan struct{})
	go func() {
		defer close(done)
		unstored, _, err := m.ReadUsage(context.Background(), "other", "else", func(context.Context) error { return nil })
		if err != nil || unstored[store.DayOf(t0)] != 1 {
			t.Errorf("the other owner's read = %v, %v; want 1 unstored", unstored, err)
		}
		if err := m.Flush(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the other owner's read and a flush waited for the blocked reads")
	}
	close(release)
	for range 10 {
		if n := <-totals; n != 5 {
			t.Errorf("a read the flush committed under = %d, want 5", n)
		}
	}
}

// TestReadUsageExactWithFlushInFlight: a read that starts while a batch
// of its key is being sent (its outcome unknown) waits for it, rather than
// miss it in both the store and its counts; a batch of other keys does not
// hold it up.
func TestReadUsageExactWithFlushInFlight(t *testing.T) {
	st := &heldStore{Store: memstore.New(), held: make(chan struct{}), entered: make(chan struct{}, 1)}
	m := newMeter(st)
	admitN(t, m, "k", 0, t0, 5)
	flushed := make(chan error)
	go func() { flushed <- m.Flush(context.Background()) }()
	<-st.entered // the batch of k's 5 is being sent
	if n := readTotal(t, m, st, "unrelated", "else", nil); n != 0 {
		t.Errorf("another key's read = %d, want 0", n)
	}
	var early bool
	total := make(chan int64)
	go func() {
		total <- readTotal(t, m, st, "k", "acme", func() {
			select {
			case <-st.held:
			default:
				early = true // would see neither the store's 5 nor pending's
			}
		})
	}()
	// Time for a wrong read to happen; a right one waits anyway.
	time.Sleep(50 * time.Millisecond)
	close(st.held)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if n := <-total; n != 5 || early {
		t.Errorf("a read during the flush = %d (read the store before the batch settled: %v), want 5", n, early)
	}
}

// TestReadUsageSpoiledReadsEnd: when a batch of its key commits during
// every read, ReadUsage reads under the turn in the end, and is exact.
func TestReadUsageSpoiledReadsEnd(t *testing.T) {
	st := memstore.New()
	m := newMeter(st)
	reads := 0
	n := readTotal(t, m, st, "k", "acme", func() {
		reads++
		admitN(t, m, "k", 0, t0, 1)
		if reads <= usageReadTries {
			if err := m.Flush(context.Background()); err != nil { // holds the turn: not on the last read
				t.Error(err)
			}
		}
	})
	if reads != usageReadTries+1 || n != int64(usageReadTries) {
		t.Errorf("%d reads, total %d; want %d reads and a total of %d (the last read's request after it)",
			reads, n, usageReadTries+1, usageReadTries)
	}
}
