package store

import (
	"context"
	"time"
)

// Store is everything keygate keeps: keys, their usage and their owners'
// plans, the feed of changes to keys and plans, and the outbox of events
// (event.go), and what was exported to Stripe (billing.go). firestorestore and
// memstore implement it; storetest checks that an implementation keeps its
// promises.
type Store interface {
	KeyStore
	KeyReader
	UsageStore
	PlanStore
	OwnerReader
	ChangeStore
	LeakStore
	EventStore
	BillingStore
}

// WithTimeout returns s with every call bounded by d: the one place where
// keygate puts a deadline on a store call, so that a store that hangs
// returns an error instead (context.DeadlineExceeded, wrapped by the store).
func WithTimeout(s Store, d time.Duration) Store {
	if t, ok := s.(timeoutStore); ok {
		s = t.s
	}
	return timeoutStore{s, d}
}

type timeoutStore struct {
	s Store
	d time.Duration
}

func (t timeoutStore) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, t.d)
}

func (t timeoutStore) Get(ctx context.Context, id string) (Key, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.Get(ctx, id)
}

func (t timeoutStore) Create(ctx context.Context, k Key) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.Create(ctx, k)
}

func (t timeoutStore) ListByOwner(ctx context.Context, owner string, after *PagePosition, limit int) (KeyPage, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.ListByOwner(ctx, owner, after, limit)
}

func (t timeoutStore) Revoke(ctx context.Context, id string, at time.Time) (Key, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.Revoke(ctx, id, at)
}

func (t timeoutStore) Delete(ctx context.Context, id string) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.Delete(ctx, id)
}

func (t timeoutStore) Rotate(ctx context.Context, id string, replacement Key, graceEnd time.Time) (Key, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.Rotate(ctx, id, replacement, graceEnd)
}

func (t timeoutStore) RotateCapped(ctx context.Context, id string, replacement Key, graceEnd time.Time, maxActive int) (Key, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.RotateCapped(ctx, id, replacement, graceEnd, maxActive)
}

func (t timeoutStore) CreateCapped(ctx context.Context, k Key, maxActive int, now time.Time) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.CreateCapped(ctx, k, maxActive, now)
}

func (t timeoutStore) ReadKey(ctx context.Context, id string, month Month) (Key, int64, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.ReadKey(ctx, id, month)
}

func (t timeoutStore) AddUsage(ctx context.Context, instance string, seq int64, counts []UsageCount) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.AddUsage(ctx, instance, seq, counts)
}

func (t timeoutStore) DailyUsage(ctx context.Context, keyID string, from, to Day) ([]DayUsage, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.DailyUsage(ctx, keyID, from, to)
}

func (t timeoutStore) MonthlyUsage(ctx context.Context, keyID string, month Month) (int64, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.MonthlyUsage(ctx, keyID, month)
}

func (t timeoutStore) OwnerDailyUsage(ctx context.Context, owner string, from, to Day) ([]DayUsage, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.OwnerDailyUsage(ctx, owner, from, to)
}

func (t timeoutStore) OwnerMonthlyUsage(ctx context.Context, owner string, month Month) (int64, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.OwnerMonthlyUsage(ctx, owner, month)
}

func (t timeoutStore) GetPlan(ctx context.Context, owner string) (Plan, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.GetPlan(ctx, owner)
}

func (t timeoutStore) SetPlan(ctx context.Context, p Plan) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.SetPlan(ctx, p)
}

func (t timeoutStore) DeletePlan(ctx context.Context, owner string) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.DeletePlan(ctx, owner)
}

func (t timeoutStore) ReadOwner(ctx context.Context, owner string, month Month) (Plan, bool, int64, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.ReadOwner(ctx, owner, month)
}

func (t timeoutStore) Changes(ctx context.Context, after ChangeCursor, limit int) ([]Change, ChangeCursor, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.Changes(ctx, after, limit)
}
