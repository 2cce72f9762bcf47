package store_test

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/apikey/storetest"
)

// hangingStore is the memory store until hang is set; from then on every
// call waits until its context ends and returns the context's error, as a
// store whose backend stopped answering.
type hangingStore struct {
	store.Store
	hang atomic.Bool
}

func newHangingStore() *hangingStore { return &hangingStore{Store: memstore.New()} }

// hung waits for ctx to end when the store hangs, and tells whether it did.
func (s *hangingStore) hung(ctx context.Context) bool {
	if !s.hang.Load() {
		return false
	}
	<-ctx.Done()
	return true
}

func (s *hangingStore) Get(ctx context.Context, id string) (store.Key, error) {
	if s.hung(ctx) {
		return store.Key{}, ctx.Err()
	}
	return s.Store.Get(ctx, id)
}

func (s *hangingStore) GetMany(ctx context.Context, ids []string) ([]store.Key, error) {
	if s.hung(ctx) {
		return nil, ctx.Err()
	}
	return s.Store.GetMany(ctx, ids)
}

func (s *hangingStore) RecordLeak(ctx context.Context, id string, at time.Time, url string) (store.Key, error) {
	if s.hung(ctx) {
		return store.Key{}, ctx.Err()
	}
	return s.Store.RecordLeak(ctx, id, at, url)
}

func (s *hangingStore) GetEvent(ctx context.Context, id string) (store.Event, error) {
	if s.hung(ctx) {
		return store.Event{}, ctx.Err()
	}
	return s.Store.GetEvent(ctx, id)
}

func (s *hangingStore) Unpublished(ctx context.Context, before time.Time, limit int) ([]store.Event, error) {
	if s.hung(ctx) {
		return nil, ctx.Err()
	}
	return s.Store.Unpublished(ctx, before, limit)
}

func (s *hangingStore) MarkPublished(ctx context.Context, ids []string, at time.Time) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.MarkPublished(ctx, ids, at)
}

func (s *hangingStore) Expiring(ctx context.Context, from, to time.Time, after string, limit int) ([]store.ExpiringKey, string, error) {
	if s.hung(ctx) {
		return nil, "", ctx.Err()
	}
	return s.Store.Expiring(ctx, from, to, after, limit)
}

func (s *hangingStore) NoteExpiry(ctx context.Context, id, notice string) (bool, error) {
	if s.hung(ctx) {
		return false, ctx.Err()
	}
	return s.Store.NoteExpiry(ctx, id, notice)
}

func (s *hangingStore) Exported(ctx context.Context, owner string, from, to store.Day) ([]store.DayExport, error) {
	if s.hung(ctx) {
		return nil, ctx.Err()
	}
	return s.Store.Exported(ctx, owner, from, to)
}

func (s *hangingStore) BeginExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.BeginExport(ctx, owner, day, a)
}

func (s *hangingStore) AdvanceExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.AdvanceExport(ctx, owner, day, a)
}

func (s *hangingStore) AbandonExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.AbandonExport(ctx, owner, day, a)
}

func (s *hangingStore) ExportCursor(ctx context.Context) (string, error) {
	if s.hung(ctx) {
		return "", ctx.Err()
	}
	return s.Store.ExportCursor(ctx)
}

func (s *hangingStore) SetExportCursor(ctx context.Context, after string) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.SetExportCursor(ctx, after)
}

func (s *hangingStore) LinkedOwners(ctx context.Context, after string, limit int) ([]store.Plan, string, error) {
	if s.hung(ctx) {
		return nil, "", ctx.Err()
	}
	return s.Store.LinkedOwners(ctx, after, limit)
}

func (s *hangingStore) RefuseBilling(ctx context.Context, owner string, r store.BillingRefusal) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.RefuseBilling(ctx, owner, r)
}

func (s *hangingStore) BillingRefused(ctx context.Context, owner string) (store.BillingRefusal, error) {
	if s.hung(ctx) {
		return store.BillingRefusal{}, ctx.Err()
	}
	return s.Store.BillingRefused(ctx, owner)
}

func (s *hangingStore) Create(ctx context.Context, k store.Key) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.Create(ctx, k)
}

func (s *hangingStore) ListByOwner(ctx context.Context, owner string, after *store.PagePosition, limit int) (store.KeyPage, error) {
	if s.hung(ctx) {
		return store.KeyPage{}, ctx.Err()
	}
	return s.Store.ListByOwner(ctx, owner, after, limit)
}

func (s *hangingStore) Revoke(ctx context.Context, id string, at time.Time) (store.Key, error) {
	if s.hung(ctx) {
		return store.Key{}, ctx.Err()
	}
	return s.Store.Revoke(ctx, id, at)
}

func (s *hangingStore) Delete(ctx context.Context, id string) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.Delete(ctx, id)
}

func (s *hangingStore) Rotate(ctx context.Context, id string, replacement store.Key, graceEnd time.Time) (store.Key, error) {
	if s.hung(ctx) {
		return store.Key{}, ctx.Err()
	}
	return s.Store.Rotate(ctx, id, replacement, graceEnd)
}

func (s *hangingStore) RotateCapped(ctx context.Context, id string, replacement store.Key, graceEnd time.Time, maxActive int) (store.Key, error) {
	if s.hung(ctx) {
		return store.Key{}, ctx.Err()
	}
	return s.Store.RotateCapped(ctx, id, replacement, graceEnd, maxActive)
}

func (s *hangingStore) CreateCapped(ctx context.Context, k store.Key, maxActive int, now time.Time) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.CreateCapped(ctx, k, maxActive, now)
}

func (s *hangingStore) ReadKey(ctx context.Context, id string, month store.Month) (store.Key, int64, error) {
	if s.hung(ctx) {
		return store.Key{}, 0, ctx.Err()
	}
	return s.Store.ReadKey(ctx, id, month)
}

func (s *hangingStore) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.AddUsage(ctx, instance, seq, counts)
}

func (s *hangingStore) DailyUsage(ctx context.Context, keyID string, from, to store.Day) ([]store.DayUsage, error) {
	if s.hung(ctx) {
		return nil, ctx.Err()
	}
	return s.Store.DailyUsage(ctx, keyID, from, to)
}

func (s *hangingStore) MonthlyUsage(ctx context.Context, keyID string, month store.Month) (int64, error) {
	if s.hung(ctx) {
		return 0, ctx.Err()
	}
	return s.Store.MonthlyUsage(ctx, keyID, month)
}

func (s *hangingStore) OwnerDailyUsage(ctx context.Context, owner string, from, to store.Day) ([]store.DayUsage, error) {
	if s.hung(ctx) {
		return nil, ctx.Err()
	}
	return s.Store.OwnerDailyUsage(ctx, owner, from, to)
}

func (s *hangingStore) OwnerMonthlyUsage(ctx context.Context, owner string, month store.Month) (int64, error) {
	if s.hung(ctx) {
		return 0, ctx.Err()
	}
	return s.Store.OwnerMonthlyUsage(ctx, owner, month)
}

func (s *hangingStore) GetPlan(ctx context.Context, owner string) (store.Plan, error) {
	if s.hung(ctx) {
		return store.Plan{}, ctx.Err()
	}
	return s.Store.GetPlan(ctx, owner)
}

func (s *hangingStore) SetPlan(ctx context.Context, p store.Plan) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.SetPlan(ctx, p)
}

func (s *hangingStore) DeletePlan(ctx context.Context, owner string) error {
	if s.hung(ctx) {
		return ctx.Err()
	}
	return s.Store.DeletePlan(ctx, owner)
}

func (s *hangingStore) ReadOwner(ctx context.Context, owner string, month store.Month) (store.Plan, bool, int64, error) {
	if s.hung(ctx) {
		return store.Plan{}, false, 0, ctx.Err()
	}
	return s.Store.ReadOwner(ctx, owner, month)
}

func (s *hangingStore) Changes(ctx context.Context, after store.ChangeCursor, limit int) ([]store.Change, store.ChangeCursor, error) {
	if s.hung(ctx) {
		return nil, after, ctx.Err()
	}
	return s.Store.Changes(ctx, after, limit)
}

// storeCall is one method of store.Store, called with ctx.
type storeCall struct {
	name string
	call func(ctx context.Context) error
}

// everyCall calls every method of store.Store on s.
func everyCall(s store.Store) []storeCall {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	k := store.Key{ID: "k", Owner: "acme", CreatedAt: t0}
	attempt := store.ExportAttempt{From: 0, To: 1, Identifier: "i", Timestamp: t0}
	return []storeCall{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err }},
		{"Create", func(ctx context.Context) error { return s.Create(ctx, k) }},
		{"ListByOwner", func(ctx context.Context) error { _, err := s.ListByOwner(ctx, "acme", nil, 10); return err }},
		{"Revoke", func(ctx context.Context) error { _, err := s.Revoke(ctx, "k", t0); return err }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, "k") }},
		{"Rotate", func(ctx context.Context) error { _, err := s.Rotate(ctx, "k", k, t0); return err }},
		{"CreateCapped", func(ctx context.Context) error { return s.CreateCapped(ctx, k, 10, t0) }},
		{"RotateCapped", func(ctx context.Context) error { _, err := s.RotateCapped(ctx, "k", k, t0, 10); return err }},
		{"ReadKey", func(ctx context.Context) error { _, _, err := s.ReadKey(ctx, "k", "2026-11"); return err }},
		{"AddUsage", func(ctx context.Context) error {
			return s.AddUsage(ctx, "i", 1, []store.UsageCount{{KeyID: "k", Owner: "acme", Day: "2026-11-27", Requests: 1}})
		}},
		{"DailyUsage", func(ctx context.Context) error {
			_, err := s.DailyUsage(ctx, "k", "2026-11-01", "2026-11-30")
			return err
		}},
		{"MonthlyUsage", func(ctx context.Context) error { _, err := s.MonthlyUsage(ctx, "k", "2026-11"); return err }},
		{"OwnerDailyUsage", func(ctx context.Context) error {
			_, err := s.OwnerDailyUsage(ctx, "acme", "2026-11-01", "2026-11-30")
			return err
		}},
		{"OwnerMonthlyUsage", func(ctx context.Context) error { _, err := s.OwnerMonthlyUsage(ctx, "acme", "2026-11"); return err }},
		{"GetPlan", func(ctx context.Context) error { _, err := s.GetPlan(ctx, "acme"); return err }},
		{"SetPlan", func(ctx context.Context) error { return s.SetPlan(ctx, store.Plan{Owner: "acme"}) }},
		{"DeletePlan", func(ctx context.Context) error { return s.DeletePlan(ctx, "acme") }},
		{"ReadOwner", func(ctx context.Context) error { _, _, _, err := s.ReadOwner(ctx, "acme", "2026-11"); return err }},
		{"Changes", func(ctx context.Context) error { _, _, err := s.Changes(ctx, "", 10); return err }},
		{"GetMany", func(ctx context.Context) error { _, err := s.GetMany(ctx, []string{"k"}); return err }},
		{"RecordLeak", func(ctx context.Context) error { _, err := s.RecordLeak(ctx, "k", t0, "u"); return err }},
		{"GetEvent", func(ctx context.Context) error { _, err := s.GetEvent(ctx, "e"); return err }},
		{"Unpublished", func(ctx context.Context) error { _, err := s.Unpublished(ctx, t0, 10); return err }},
		{"MarkPublished", func(ctx context.Context) error { return s.MarkPublished(ctx, []string{"e"}, t0) }},
		{"Expiring", func(ctx context.Context) error { _, _, err := s.Expiring(ctx, t0, t0, "", 10); return err }},
		{"NoteExpiry", func(ctx context.Context) error { _, err := s.NoteExpiry(ctx, "k", "7d"); return err }},
		{"Exported", func(ctx context.Context) error {
			_, err := s.Exported(ctx, "acme", "2026-11-01", "2026-11-30")
			return err
		}},
		{"BeginExport", func(ctx context.Context) error { return s.BeginExport(ctx, "acme", "2026-11-27", attempt) }},
		{"AdvanceExport", func(ctx context.Context) error { return s.AdvanceExport(ctx, "acme", "2026-11-27", attempt) }},
		{"AbandonExport", func(ctx context.Context) error { return s.AbandonExport(ctx, "acme", "2026-11-27", attempt) }},
		{"ExportCursor", func(ctx context.Context) error { _, err := s.ExportCursor(ctx); return err }},
		{"SetExportCursor", func(ctx context.Context) error { return s.SetExportCursor(ctx, "") }},
		{"LinkedOwners", func(ctx context.Context) error { _, _, err := s.LinkedOwners(ctx, "", 10); return err }},
		{"RefuseBilling", func(ctx context.Context) error {
			return s.RefuseBilling(ctx, "acme", store.BillingRefusal{PlanUpdatedAt: t0, Reason: "r", At: t0})
		}},
		{"BillingRefused", func(ctx context.Context) error { _, err := s.BillingRefused(ctx, "acme"); return err }},
	}
}

// TestEveryCallListed keeps everyCall, and so the timeout tests, complete
// when store.Store gains a method.
func TestEveryCallListed(t *testing.T) {
	if n, want := len(everyCall(nil)), reflect.TypeFor[store.Store]().NumMethod(); n != want {
		t.Errorf("everyCall calls %d methods; store.Store has %d", n, want)
	}
}

// TestHangingStoreContract runs the store contract on the test's fake, as it
// is and behind WithTimeout: until it hangs it is a store like any other,
// and WithTimeout changes nothing of what a store answers in time.
func TestHangingStoreContract(t *testing.T) {
	t.Run("fake", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newHangingStore() })
	})
	t.Run("WithTimeout", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return store.WithTimeout(newHangingStore(), time.Minute) })
	})
}

// callWithin runs call with ctx and returns its error and how long it took;
// it fails the test if call has not returned after limit.
func callWithin(t *testing.T, c storeCall, ctx context.Context, limit time.Duration) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.call(ctx) }()
	select {
	case err := <-done:
		return err, time.Since(start)
	case <-time.After(limit):
		t.Fatalf("%s hung: no answer after %v", c.name, limit)
		return nil, 0
	}
}

// TestWithTimeoutEndsHangingCalls checks that every call through WithTimeout
// to a store that hangs returns the deadline's error once the timeout has
// passed, not later.
func TestWithTimeoutEndsHangingCalls(t *testing.T) {
	h := newHangingStore()
	h.hang.Store(true)
	const d = 50 * time.Millisecond
	for _, c := range everyCall(store.WithTimeout(h, d)) {
		err, took := callWithin(t, c, context.Background(), 5*time.Second)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s = %v, want context.DeadlineExceeded", c.name, err)
		}
		if took < d {
			t.Errorf("%s returned after %v, before the %v timeout", c.name, took, d)
		}
	}
}

// TestWithTimeoutKeepsAnEarlierDeadline: the caller's own deadline, when it
// comes first, still ends the call.
func TestWithTimeoutKeepsAnEarlierDeadline(t *testing.T) {
	h := newHangingStore()
	h.hang.Store(true)
	s := store.WithTimeout(h, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	for _, c := range everyCall(s) {
		if err, _ := callWithin(t, c, ctx, 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s = %v, want context.DeadlineExceeded", c.name, err)
		}
	}
}

// TestWithTimeoutReplaces checks that wrapping a wrapped store sets a new
// timeout instead of stacking a second one: the last one given applies,
// shorter or longer.
func TestWithTimeoutReplaces(t *testing.T) {
	h := newHangingStore()
	h.hang.Store(true)
	get := func(s store.Store) storeCall { return everyCall(s)[0] }

	shorter := store.WithTimeout(store.WithTimeout(h, time.Hour), 50*time.Millisecond)
	if err, _ := callWithin(t, get(shorter), context.Background(), 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get = %v, want context.DeadlineExceeded after the shorter timeout", err)
	}
	const longer = 300 * time.Millisecond
	err, took := callWithin(t, get(store.WithTimeout(store.WithTimeout(h, 10*time.Millisecond), longer)), context.Background(), 5*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) || took < longer {
		t.Errorf("Get = %v after %v, want context.DeadlineExceeded after the later, longer timeout %v", err, took, longer)
	}
}
