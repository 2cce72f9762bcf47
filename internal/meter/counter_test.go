package meter

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// TestCounterExactUnderFlushes: 64 goroutines count requests of one key
// without a quota, lock-free, while flushes take the counts out: every
// request is stored exactly once.
func TestCounterExactUnderFlushes(t *testing.T) {
	st := memstore.New()
	clock := testkit.NewFakeClock()
	log, _ := testkit.Logger()
	m := New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: clock.Now, Log: log})
	const workers, each = 64, 500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	flushes := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				flushes <- n
				return
			default:
				if err := m.Flush(context.Background()); err != nil {
					t.Error(err)
				}
				n++
			}
		}
	}()
	for range workers {
		wg.Go(func() { admitN(t, m, "k", 0, clock.Now(), each) })
	}
	wg.Wait()
	close(stop)
	if n := <-flushes; n < 2 {
		t.Logf("only %d flushes ran during the counting", n)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, st, "k"); n != workers*each {
		t.Errorf("stored %d, want %d", n, workers*each)
	}
}

// TestCounterDays: requests on either side of midnight are stored on their
// own days, and a counter moved to a new day books the old day's count.
func TestCounterDays(t *testing.T) {
	st := memstore.New()
	clock := testkit.NewFakeClock()
	log, _ := testkit.Logger()
	m := New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: clock.Now, Log: log})
	clock.Advance(11*time.Hour + 59*time.Minute) // 23:59
	admitN(t, m, "k", 0, clock.Now(), 3)
	clock.Advance(2 * time.Minute)
	admitN(t, m, "k", 0, clock.Now(), 4)
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	days, err := st.DailyUsage(context.Background(), "k", "2026-11-27", "2026-11-28")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.DayUsage{{Day: "2026-11-27", Requests: 3}, {Day: "2026-11-28", Requests: 4}}
	if fmt.Sprint(days) != fmt.Sprint(want) {
		t.Errorf("days = %v, want %v", days, want)
	}
}

// TestCounterQuotaGainedLater: requests counted lock-free before a key or
// its owner had a quota count against the quota once it has one.
func TestCounterQuotaGainedLater(t *testing.T) {
	for _, owner := range []bool{false, true} {
		t.Run(fmt.Sprint("owner=", owner), func(t *testing.T) {
			st := memstore.New()
			clock := testkit.NewFakeClock()
			log, _ := testkit.Logger()
			m := New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: clock.Now, Log: log})
			admitN(t, m, "k", 0, clock.Now(), 7)
			a := Admission{KeyID: "k", Owner: "acme", KeyQuota: 10}
			if owner {
				a = Admission{KeyID: "k", Owner: "acme", OwnerQuota: 10}
			}
			admitted := 0
			for range 10 {
				if d, err := m.Admit(a, clock.Now()); err == nil && d.Allowed {
					m.Done()
					admitted++
				}
			}
			if admitted != 3 {
				t.Errorf("admitted %d more under a quota of 10 after 7, want 3", admitted)
			}
		})
	}
}

// TestCountersBounded: a key's counter is dropped once it has counted
// nothing for two flushes, and a request after that counts again.
func TestCountersBounded(t *testing.T) {
	st := memstore.New()
	clock := testkit.NewFakeClock()
	log, _ := testkit.Logger()
	m := New(Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: clock.Now, Log: log})
	for i := range 1000 {
		admitN(t, m, fmt.Sprint("k", i), 0, clock.Now(), 1)
	}
	if _, _, counters := m.sizes(); counters != 1000 {
		t.Fatalf("%d counters, want 1000", counters)
	}
	for range 3 {
		if err := m.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, counters := m.sizes(); counters != 0 {
		t.Errorf("%d counters after two idle flushes, want 0", counters)
	}
	admitN(t, m, "k0", 0, clock.Now(), 2)
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, st, "k0"); n != 3 {
		t.Errorf("k0 stored %d, want 3", n)
	}
}

// BenchmarkAdmit is the meter's part of a request, for a key without a
// quota (lock-free) and with one (under the lock), on every core.
func BenchmarkAdmit(b *testing.B) {
	for _, quota := range []int64{0, 1 << 60} {
		b.Run(fmt.Sprint("quota=", quota > 0), func(b *testing.B) {
			log, _ := testkit.Logger()
			m := New(Options{Store: memstore.New(), Interval: time.Hour, Idle: time.Hour, Now: time.Now, Log: log})
			now := time.Now()
			a := Admission{KeyID: "k", Owner: "acme", KeyQuota: quota}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if d, err := m.Admit(a, now); err != nil || !d.Allowed {
						b.Fatal(d, err)
					}
					m.Done()
				}
			})
		})
	}
}
