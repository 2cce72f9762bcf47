package apikey

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/testkit"
)

// The Gate's meter, through whole requests, on the emulator: what Protect
// admits is counted and stored exactly once, and what it refuses is not.
// The meter's own mechanics are tested in package meter.

// hit makes n requests to GET / with key and checks each is 200.
func hit(t *testing.T, s *server, key string, n int) {
	t.Helper()
	for i := range n {
		if w := s.do("GET", "/", "", key); w.Code != 200 {
			t.Fatalf("request %d = %d %s", i, w.Code, w.Body)
		}
	}
}

// monthTotal is the key's stored total for t0's month.
func monthTotal(t *testing.T, s store.UsageStore, id string) int64 {
	t.Helper()
	n, err := s.MonthlyUsage(context.Background(), id, store.MonthOf(t0))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// meteredServer is a server on the emulator store s with a fake clock; the
// flush interval is long, so that the tests flush when they choose.
func meteredServer(t *testing.T, s store.Store) *server {
	t.Helper()
	return newServer(t, s, flushByHand, slowStore)
}

// flakyUsageStore is a Firestore store whose AddUsage can fail: before
// writing (down), or after writing, as when a timeout hides a commit.
type flakyUsageStore struct {
	*firestorestore.Store
	down       atomic.Bool
	failAfter  atomic.Bool
	addUsageOK atomic.Int64
}

func (s *flakyUsageStore) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	if s.down.Load() {
		return testkit.ErrStoreDown
	}
	err := s.Store.AddUsage(ctx, instance, seq, counts)
	if err == nil {
		s.addUsageOK.Add(1)
	}
	if err == nil && s.failAfter.Load() {
		return fmt.Errorf("%w after the commit", context.DeadlineExceeded)
	}
	return err
}

func TestMeterPersistsExactCount(t *testing.T) {
	st := testkit.EmulatorStore(t)
	s := meteredServer(t, st)
	key, k := s.mint(t, "acme")
	hit(t, s, key, 137)
	if n := monthTotal(t, st, k.ID); n != 0 {
		t.Fatalf("stored before a flush: %d", n)
	}
	if err := s.meter.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, st, k.ID); n != 137 {
		t.Errorf("month total = %d, want 137", n)
	}
	days, _ := st.DailyUsage(context.Background(), k.ID, store.DayOf(t0), store.DayOf(t0))
	if len(days) != 1 || days[0].Requests != 137 {
		t.Errorf("daily usage = %v, want 137 on %s", days, store.DayOf(t0))
	}
}

func TestMeterFailedFlushLosesNothing(t *testing.T) {
	st := &flakyUsageStore{Store: testkit.EmulatorStore(t)}
	s := meteredServer(t, st)
	key, k := s.mint(t, "acme")
	ctx := context.Background()

	hit(t, s, key, 50)
	st.down.Store(true)
	if err := s.meter.Flush(ctx); err == nil {
		t.Fatal("flush with the store down succeeded")
	}
	hit(t, s, key, 25) // counted while the first batch waits
	if err := s.meter.Flush(ctx); err == nil {
		t.Fatal("second flush with the store down succeeded")
	}
	st.down.Store(false)
	if err := s.meter.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, st, k.ID); n != 75 {
		t.Errorf("month total after the store came back = %d, want 75", n)
	}

	// A flush whose commit succeeded but whose answer was lost is retried,
	// and the store does not count it twice.
	hit(t, s, key, 10)
	st.failAfter.Store(true)
	if err := s.meter.Flush(ctx); err == nil {
		t.Fatal("flush that reported a timeout succeeded")
	}
	st.failAfter.Store(false)
	if err := s.meter.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, st, k.ID); n != 85 {
		t.Errorf("month total after an ambiguous flush and its retry = %d, want 85", n)
	}
}

func TestMeterTwoInstancesAddUp(t *testing.T) {
	// Two instances: two clients of one Firestore project.
	_, project := emulator.Project(t)
	open := func() *firestorestore.Store {
		s := firestorestore.New(firestorestore.Config{Project: project})
		t.Cleanup(func() { s.Close() })
		return s
	}
	st := open()
	a := meteredServer(t, st)
	b := meteredServer(t, open())
	key, k := a.mint(t, "acme")
	var wg sync.WaitGroup
	wg.Go(func() { hit(t, a, key, 60) })
	wg.Go(func() { hit(t, b, key, 40) })
	wg.Wait()
	wg.Go(func() { a.meter.Flush(context.Background()) })
	wg.Go(func() { b.meter.Flush(context.Background()) })
	wg.Wait()
	hit(t, a, key, 5)
	a.meter.Flush(context.Background())
	if n := monthTotal(t, st, k.ID); n != 105 {
		t.Errorf("month total of two instances = %d, want 105", n)
	}
}

func TestMeterRefusedRequestsNotCounted(t *testing.T) {
	st := testkit.EmulatorStore(t)
	s := meteredServer(t, st)
	_, revoked := s.mint(t, "acme", func(k *store.Key) { k.RevokedAt = t0.Add(-time.Minute) })
	noScope, k := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeUsage} })
	limited, lk := s.mint(t, "acme", func(k *store.Key) { k.RateLimit, k.Burst = 1, 1 })
	for _, c := range []struct {
		method, path, key string
		want              int
	}{
		{"POST", "/v1/things", noScope, 403},
		{"GET", "/v1/keys", noScope, 403},
		{"GET", "/nope", noScope, 404},
		{"GET", "/", limited, 200},
		{"GET", "/", limited, 429},
		{"GET", "/", limited, 429},
	} {
		if w := s.do(c.method, c.path, "", c.key); w.Code != c.want {
			t.Fatalf("%s %s = %d, want %d", c.method, c.path, w.Code, c.want)
		}
	}
	s.meter.Flush(context.Background())
	for id, want := range map[string]int64{k.ID: 0, lk.ID: 1, revoked.ID: 0} {
		if n := monthTotal(t, st, id); n != want {
			t.Errorf("key %s counted %d, want %d", id[:8], n, want)
		}
	}
}

// TestMeterCountsAcrossDays checks that counts go to the UTC day they were
// made on, and the month total to its month.
func TestMeterCountsAcrossDays(t *testing.T) {
	st := testkit.EmulatorStore(t)
	s := meteredServer(t, st)
	key, k := s.mint(t, "acme")
	s.clock.Advance(11*time.Hour + 59*time.Minute) // 23:59 on t0's day
	hit(t, s, key, 3)
	s.clock.Advance(2 * time.Minute)
	hit(t, s, key, 4)
	if err := s.meter.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	days, err := st.DailyUsage(context.Background(), k.ID, store.DayOf(t0), store.DayOf(t0.Add(24*time.Hour)))
	if err != nil || len(days) != 2 || days[0].Requests != 3 || days[1].Requests != 4 {
		t.Errorf("days = %v, %v; want 3 then 4", days, err)
	}
}
