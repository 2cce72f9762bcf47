package apikey

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// Usage reads of one owner wait for no other owner's: the meter holds no
// lock across the store's reads (internal/meter's ReadUsage).

// usageQuery is a usage report of the MaxUsageDays days to now.
func usageQuery(now time.Time) string {
	return fmt.Sprintf("/v1/usage?from=%s&to=%s",
		store.DayOf(now.AddDate(0, 0, -(keyrules.MaxUsageDays-1))), store.DayOf(now))
}

// heldUsage is a store whose daily usage reads of the key id wait until
// release is closed; in counts them.
type heldUsage struct {
	store.Store
	id      string
	release chan struct{}
	in      atomic.Int64
}

func (s *heldUsage) DailyUsage(ctx context.Context, id string, from, to store.Day) ([]store.DayUsage, error) {
	if id == s.id {
		s.in.Add(1)
		<-s.release
	}
	return s.Store.DailyUsage(ctx, id, from, to)
}

// TestUsageReadsOfOneOwnerHoldUpNoOther: 10 usage reads of one owner's key
// at once; usageReadsPerOwner of them reach the store, where they hang, and
// the others wait their turn. Another owner's usage read is answered
// meanwhile, and a flush ends. Once released, each read counts the key's
// requests once. Deterministic: it holds the reads, whatever the machine's
// load.
func TestUsageReadsOfOneOwnerHoldUpNoOther(t *testing.T) {
	st := &heldUsage{Store: memstore.New(), release: make(chan struct{})}
	s := newServer(t, st, flushByHand, slowStore)
	usage := func(k *store.Key) { k.Scopes = []string{scopeUsage} }
	flood, fk := s.mint(t, "flood", usage)
	quiet, _ := s.mint(t, "quiet", usage)
	st.id = fk.ID
	for _, key := range []string{flood, quiet} {
		s.want(t, key, 200, "a request to count")
	}
	var wg sync.WaitGroup
	totals := make(chan int64, 10)
	for range 10 {
		wg.Go(func() {
			var v view.UsageView
			testkit.MustJSON(t, s.do("GET", usageQuery(s.clock.Now()), "", flood), 200, &v)
			totals <- v.MonthTotal
		})
	}
	testkit.WaitFor(t, "usage reads in the store", func() bool { return st.in.Load() == usageReadsPerOwner })
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		var v view.UsageView
		testkit.MustJSON(t, s.do("GET", usageQuery(s.clock.Now()), "", quiet), 200, &v)
		if v.MonthTotal != 1 {
			t.Errorf("the other owner's month_total = %d, want 1", v.MonthTotal)
		}
		if err := s.meter.Flush(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-answered:
	case <-time.After(time.Minute):
		t.Fatal("another owner's usage read, and a flush, waited for the held reads")
	}
	if n := st.in.Load(); n != usageReadsPerOwner {
		t.Errorf("%d of one owner's usage reads in the store at once, want %d", n, usageReadsPerOwner)
	}
	close(st.release)
	wg.Wait()
	close(totals)
	for n := range totals {
		if n != 1 {
			t.Errorf("a held read's month_total = %d, want 1", n)
		}
	}
}

// TestUsageOnEmulatorBurstOfOneKey: one key's 100 concurrent reads of 92
// days, on the emulator, while another owner's key reads its usage every
// 50 ms. When the meter's one lock was held across the store's reads, that
// owner's reads took 2.77 s (0.02 to 0.04 s alone). Now its median stays
// within 0.1 s of its median alone, measured just before, and its p99 (the
// slowest of 20 to 50 reads) within 1 s: measured 0.13 to 0.15 s, but not
// asserted at 0.2 s, since on the shared 2-core machine at load average 25
// to 30 its reads alone had a p99 of up to 0.3 s, and during the burst up
// to 0.66 s.
func TestUsageOnEmulatorBurstOfOneKey(t *testing.T) {
	st := testkit.EmulatorStore(t)
	s := newRealServer(t, st)
	usage := func(k *store.Key) { k.Scopes = []string{scopeUsage}; k.CreatedAt = time.Now() }
	flood, fk := s.mint(t, "flood", usage)
	quiet, _ := s.mint(t, "quiet", usage)
	var counts []store.UsageCount
	for d := range keyrules.MaxUsageDays {
		counts = append(counts, store.UsageCount{KeyID: fk.ID, Owner: "flood", Day: store.DayOf(time.Now().AddDate(0, 0, -d)), Requests: 10})
	}
	if err := st.AddUsage(t.Context(), "seed", 1, counts); err != nil {
		t.Fatal(err)
	}
	read := func(key string) time.Duration {
		start := time.Now()
		if w := s.do("GET", usageQuery(time.Now()), "", key); w.Code != 200 {
			t.Errorf("GET /v1/usage = %d %s", w.Code, w.Body)
		}
		return time.Since(start)
	}
	read(flood) // warm: the key cached, the emulator's queries planned
	var alone []time.Duration
	for tick := time.NewTicker(50 * time.Millisecond); len(alone) < 20; <-tick.C {
		alone = append(alone, read(quiet))
	}
	time.Sleep(time.Second) // the management buckets refill

	var wg sync.WaitGroup
	var burstDone atomic.Bool
	begin := make(chan struct{})
	for range 100 {
		wg.Go(func() { <-begin; read(flood) })
	}
	start := time.Now()
	close(begin)
	var quietTook []time.Duration
	done := make(chan struct{})
	go func() { wg.Wait(); burstDone.Store(true); close(done) }()
	for tick := time.NewTicker(50 * time.Millisecond); !burstDone.Load(); <-tick.C {
		quietTook = append(quietTook, read(quiet))
	}
	<-done
	burst := time.Since(start)
	p99 := percentile(quietTook, 99)
	t.Logf("the other owner's usage reads alone: median %v, p99 %v", percentile(alone, 50), percentile(alone, 99))
	t.Logf("100 reads of 92 days by one key took %v; the other owner's %d reads meanwhile: median %v, p99 %v",
		burst, len(quietTook), percentile(quietTook, 50), p99)
	if bound := percentile(alone, 50) + 100*time.Millisecond; percentile(quietTook, 50) > bound {
		t.Errorf("the other owner's usage reads during the burst: median %v, want at most %v (0.1 s over its median alone)", percentile(quietTook, 50), bound)
	}
	if p99 > time.Second {
		t.Errorf("the other owner's usage reads during the burst: p99 %v, want at most 1 s", p99)
	}
}

// percentile is the p-th percentile of ds, by nearest rank.
func percentile(ds []time.Duration, p int) time.Duration {
	ds = slices.Sorted(slices.Values(ds))
	return ds[(len(ds)*p+99)/100-1]
}

// TestUsageSlots: an owner's usage reports take turns, usageReadsPerOwner
// at a time; one more waits at most its wait, another owner's takes a turn
// at once, and the map forgets an owner once its reports are done.
func TestUsageSlots(t *testing.T) {
	u := newUsageSlots()
	var releases []func()
	for range usageReadsPerOwner {
		release, err := u.take(t.Context(), "flood", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, release)
	}
	if _, err := u.take(t.Context(), "flood", 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a report past the owner's turns = %v, want a deadline", err)
	}
	release, err := u.take(t.Context(), "quiet", 0)
	if err != nil {
		t.Fatalf("another owner's report waited: %v", err)
	}
	release()
	for _, release := range releases {
		release()
	}
	if n := len(u.owners); n != 0 {
		t.Errorf("%d owners kept once their reports are done, want 0", n)
	}
}
