package meter

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
)

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
		return errStoreDown
	}
	err := s.FirestoreStore.AddUsage(ctx, instance, seq, counts)
	if err == nil {
		s.addUsageOK.Add(1)
	}
	if err == nil && s.failAfter.Load() {
		return fmt.Errorf("%w after the commit", context.DeadlineExceeded)
	}
	return err
}

// meteredServer is a Server on the emulator with a fake clock; the flush
// interval is long, so that the tests flush when they choose.
func meteredServer(t *testing.T, store store.KeyStore, cfg Config) (*Server, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	log, _ := testLogger()
	cfg.FlushInterval = time.Hour
	s := NewServer(cfg, store, Options{Now: clock.Now, Logger: log})
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, clock
}

// hit makes n requests to GET / with key and checks each is 200.
func hit(t *testing.T, s *Server, key string, n int) {
	t.Helper()
	for i := range n {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("request %d = %d %s", i, w.Code, w.Body)
		}
	}
}

func monthTotal(t *testing.T, s store.UsageStore, id string) int64 {
	t.Helper()
	n, err := s.MonthlyUsage(context.Background(), id, store.MonthOf(t0))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMeterPersistsExactCount(t *testing.T) {
	cfg := emulatorConfig(t)
	store := firestorestore.New(cfg)
	s, _ := meteredServer(t, store, cfg)
	key, k := mintTestKey(t, store, "acme")
	hit(t, s, key, 137)
	if n := monthTotal(t, store, k.ID); n != 0 {
		t.Fatalf("stored before a flush: %d", n)
	}
	if err := s.Meter().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, store, k.ID); n != 137 {
		t.Errorf("month total = %d, want 137", n)
	}
	days, _ := store.DailyUsage(context.Background(), k.ID, store.DayOf(t0), store.DayOf(t0))
	if len(days) != 1 || days[0].Requests != 137 {
		t.Errorf("daily usage = %v, want 137 on %s", days, store.DayOf(t0))
	}
}

func TestMeterFailedFlushLosesNothing(t *testing.T) {
	cfg := emulatorConfig(t)
	store := &flakyUsageStore{FirestoreStore: firestorestore.New(cfg)}
	s, _ := meteredServer(t, store, cfg)
	key, k := mintTestKey(t, store, "acme")
	ctx := context.Background()

	hit(t, s, key, 50)
	store.down.Store(true)
	if err := s.Meter().Flush(ctx); err == nil {
		t.Fatal("flush with the store down succeeded")
	}
	hit(t, s, key, 25) // counted while the first batch waits
	if err := s.Meter().Flush(ctx); err == nil {
		t.Fatal("second flush with the store down succeeded")
	}
	store.down.Store(false)
	if err := s.Meter().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, store, k.ID); n != 75 {
		t.Errorf("month total after the store came back = %d, want 75", n)
	}

	// A flush whose commit succeeded but whose answer was lost is retried,
	// and the store does not count it twice.
	hit(t, s, key, 10)
	store.failAfter.Store(true)
	if err := s.Meter().Flush(ctx); err == nil {
		t.Fatal("flush that reported a timeout succeeded")
	}
	store.failAfter.Store(false)
	if err := s.Meter().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, store, k.ID); n != 85 {
		t.Errorf("month total after an ambiguous flush and its retry = %d, want 85", n)
	}
}

func TestMeterTwoInstancesAddUp(t *testing.T) {
	cfg := emulatorConfig(t)
	store := firestorestore.New(cfg)
	a, _ := meteredServer(t, store, cfg)
	b, _ := meteredServer(t, firestorestore.New(cfg), cfg)
	key, k := mintTestKey(t, store, "acme")
	var wg sync.WaitGroup
	wg.Go(func() { hit(t, a, key, 60) })
	wg.Go(func() { hit(t, b, key, 40) })
	wg.Wait()
	wg.Go(func() { a.Meter().Flush(context.Background()) })
	wg.Go(func() { b.Meter().Flush(context.Background()) })
	wg.Wait()
	hit(t, a, key, 5)
	a.Meter().Flush(context.Background())
	if n := monthTotal(t, store, k.ID); n != 105 {
		t.Errorf("month total of two instances = %d, want 105", n)
	}
}

func TestMeterRefusedRequestsNotCounted(t *testing.T) {
	cfg := emulatorConfig(t)
	store := firestorestore.New(cfg)
	s, _ := meteredServer(t, store, cfg)
	_, revoked := mintTestKey(t, store, "acme", func(k *store.Key) { k.RevokedAt = t0.Add(-time.Minute) })
	noScope, k := mintTestKey(t, store, "acme", func(k *store.Key) { k.Scopes = []string{ScopeUsageRead} })
	limited, lk := mintTestKey(t, store, "acme", func(k *store.Key) { k.RateLimit, k.Burst = 1, 1 })
	for _, c := range []struct {
		method, path, key string
		want              int
	}{
		{"POST", "/v1/bingo/check", noScope, 403},
		{"GET", "/v1/keys", noScope, 403},
		{"GET", "/nope", noScope, 404},
		{"GET", "/", limited, 200},
		{"GET", "/", limited, 429},
		{"GET", "/", limited, 429},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		r.Header.Set("X-API-Key", c.key)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Fatalf("%s %s = %d, want %d", c.method, c.path, w.Code, c.want)
		}
	}
	s.Meter().Flush(context.Background())
	for id, want := range map[string]int64{k.ID: 0, lk.ID: 1, revoked.ID: 0} {
		if n := monthTotal(t, store, id); n != want {
			t.Errorf("key %s counted %d, want %d", id[:8], n, want)
		}
	}
}

// TestMeterCountsAcrossDays checks that counts go to the UTC day they were
// made on, and the month total to its month.
func TestMeterCountsAcrossDays(t *testing.T) {
	cfg := emulatorConfig(t)
	store := firestorestore.New(cfg)
	s, clock := meteredServer(t, store, cfg)
	key, k := mintTestKey(t, store, "acme")
	clock.Advance(11*time.Hour + 59*time.Minute) // 23:59 on t0's day
	hit(t, s, key, 3)
	clock.Advance(2 * time.Minute)
	hit(t, s, key, 4)
	if err := s.Meter().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	days, err := store.DailyUsage(context.Background(), k.ID, store.DayOf(t0), store.DayOf(t0.Add(24*time.Hour)))
	if err != nil || len(days) != 2 || days[0].Requests != 3 || days[1].Requests != 4 {
		t.Errorf("days = %v, %v; want 3 then 4", days, err)
	}
}

func TestMeterFlushInBackground(t *testing.T) {
	store := memstore.New()
	clock := newFakeClock()
	log, _ := testLogger()
	m := New(store, 10*time.Second, time.Second, time.Hour, clock.Now, log)
	admit := func() {
		t.Helper()
		if err := m.Admit(Admission{KeyID: "k", Owner: "acme", KeyQuota: 100}, clock.Now()); err != nil {
			t.Fatal(err)
		}
		m.Done()
	}
	admit()
	if n, _ := store.MonthlyUsage(context.Background(), "k", store.MonthOf(t0)); n != 0 {
		t.Fatalf("flushed before the interval: %d", n)
	}
	clock.Advance(10 * time.Second)
	admit() // starts a flush in the background
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, _ := store.MonthlyUsage(context.Background(), "k", store.MonthOf(t0))
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

// notAppliedStore is a memory store whose AddUsage, while down, fails
// saying it applied nothing, and which counts its AddUsage calls.
type notAppliedStore struct {
	*memstore.Store
	down  atomic.Bool
	calls atomic.Int64
}

func (s *notAppliedStore) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	s.calls.Add(1)
	if s.down.Load() {
		return fmt.Errorf("%w: %w", store.ErrUsageNotApplied, errStoreDown)
	}
	return s.MemoryStore.AddUsage(ctx, instance, seq, counts)
}

// admitN admits n requests of id at now on m, each answered at once.
func admitN(t testing.TB, m *Meter, id string, quota int64, now time.Time, n int) {
	t.Helper()
	for range n {
		if err := m.Admit(Admission{KeyID: id, Owner: "acme", KeyQuota: quota}, now); err != nil {
			t.Fatal(err)
		}
		m.Done()
	}
}

// TestMeterOutageMergesBatches keeps the store down for an hour of flushes
// with 100 keys: the counts stay one per key and day, not a batch per
// flush, and once the store is back one batch stores them all, exactly.
func TestMeterOutageMergesBatches(t *testing.T) {
	store := &notAppliedStore{MemoryStore: memstore.New()}
	store.down.Store(true)
	clock := newFakeClock()
	log, _ := testLogger()
	m := New(store, time.Hour, time.Second, time.Hour, clock.Now, log)
	for range 360 { // an hour of 10 s flushes
		for k := range 100 {
			admitN(t, m, fmt.Sprint("k", k), 0, clock.Now(), 1)
		}
		if err := m.Flush(context.Background()); err == nil {
			t.Fatal("flush succeeded with the store down")
		}
		clock.Advance(10 * time.Second)
	}
	if pending, _ := m.sizes(); pending != 100 || m.inDoubt != nil {
		t.Fatalf("after the outage: %d pending counts, batch in doubt %v; want 100 and none", pending, m.inDoubt != nil)
	}
	store.down.Store(false)
	before := store.calls.Load()
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := store.calls.Load() - before; n != 1 {
		t.Errorf("replay took %d AddUsage calls, want 1", n)
	}
	for k := range 100 {
		if n := monthTotal(t, store, fmt.Sprint("k", k)); n != 360 {
			t.Fatalf("k%d stored %d, want 360", k, n)
		}
	}
}

// hidingStore applies AddUsage and then, while hide is set, reports a
// timeout: the outcome of the batch is unknown to the meter.
type hidingStore struct {
	*memstore.Store
	hide atomic.Bool
}

func (s *hidingStore) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	err := s.MemoryStore.AddUsage(ctx, instance, seq, counts)
	if err == nil && s.hide.Load() {
		return context.DeadlineExceeded
	}
	return err
}

// TestMeterUnknownOutcomeKeepsBatch: a batch whose outcome is unknown is
// retried as it was, while new counts wait beside it, and nothing is
// counted twice.
func TestMeterUnknownOutcomeKeepsBatch(t *testing.T) {
	store := &hidingStore{MemoryStore: memstore.New()}
	clock := newFakeClock()
	log, _ := testLogger()
	m := New(store, time.Hour, time.Second, time.Hour, clock.Now, log)
	admitN(t, m, "k", 0, clock.Now(), 5)
	store.hide.Store(true)
	for range 3 {
		if err := m.Flush(context.Background()); err == nil {
			t.Fatal("hidden outcome reported as success")
		}
		admitN(t, m, "k", 0, clock.Now(), 2)
	}
	if m.inDoubt == nil || m.inDoubt.seq != 1 {
		t.Fatalf("batch in doubt = %+v, want batch 1 kept", m.inDoubt)
	}
	store.hide.Store(false)
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := monthTotal(t, store, "k"); n != 11 {
		t.Errorf("stored %d, want 11", n)
	}
}

// TestMeterMemoryBounded counts 100,000 distinct keys with quotas, of one
// owner: once flushed and idle, the meter holds nothing of them, and a past
// month's tallies go as soon as they are stored.
func TestMeterMemoryBounded(t *testing.T) {
	store := memstore.New()
	clock := newFakeClock()
	log, _ := testLogger()
	m := New(store, time.Hour, time.Second, 11*time.Minute, clock.Now, log)
	for i := range 100_000 {
		admitN(t, m, fmt.Sprint("k", i), 100, clock.Now(), 1)
	}
	if pending, tallies := m.sizes(); pending != 100_000 || tallies != 100_001 {
		t.Fatalf("before flushing: %d pending, %d tallies", pending, tallies)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pending, tallies := m.sizes(); pending != 0 || tallies != 100_001 {
		t.Fatalf("flushed, still in use: %d pending, %d tallies; want 0 and 100001 (the keys' and the owner's)", pending, tallies)
	}
	clock.Advance(11 * time.Minute)
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pending, tallies := m.sizes(); pending != 0 || tallies != 0 {
		t.Fatalf("flushed and idle: %d pending, %d tallies; want 0 and 0", pending, tallies)
	}
	// A key used on the last evening of a month, then in the next.
	clock.Advance(3*24*time.Hour + 11*time.Hour) // 2026-11-30 23:11
	admitN(t, m, "late", 100, clock.Now(), 1)
	clock.Advance(time.Hour) // December
	m.Flush(context.Background())
	if _, tallies := m.sizes(); tallies != 0 {
		t.Errorf("November's tally kept into December: %d tallies", tallies)
	}
}
