package testkit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrAnswerLost is what a LostAnswerStore answers a write it applied: what
// the Firestore client returns once a commit's answer is lost (see
// internal/faultproxy), an error that proves nothing.
var ErrAnswerLost = status.Error(codes.Unavailable, "testkit: the write was applied and its answer lost")

// LostAnswerStore wraps a Store and, on demand, applies a write and loses
// its answer, as faultproxy.LoseCommitAnswers does to Firestore: the next
// Lose writes (key and plan writes, AddUsage, BeginExport and AdvanceExport) are applied by the wrapped
// store and answered ErrAnswerLost. A write the wrapped store refuses (not
// found, exists, inactive, limit reached, invalid) applied nothing and is
// answered as the store answered it. The next Drop writes are not applied
// and answered ErrAnswerLost all the same (a timeout before the commit
// arrived); with ReadsDown, Get and GetPlan fail, as a read-back in an
// outage does, and with DownAfterLoss, ReadsDown is set by a lost answer
// (faultproxy's LoseCommitAnswers with an outage after). Other reads pass
// unchanged.
type LostAnswerStore struct {
	store.Store
	Lose          atomic.Int64 // writes still to apply and lose the answer of
	Lost          atomic.Int64 // writes applied whose answer was lost
	Drop          atomic.Int64 // writes still to drop
	ReadsDown     atomic.Bool
	DownAfterLoss atomic.Bool
}

// write runs a write of the wrapped store, unless it is to be dropped, and
// answers as it did, or ErrAnswerLost if the write applied and its answer
// is to be lost.
func (s *LostAnswerStore) write(apply func() error) error {
	if take(&s.Drop) {
		return ErrAnswerLost
	}
	if err := apply(); err != nil || !take(&s.Lose) {
		return err
	}
	s.Lost.Add(1)
	if s.DownAfterLoss.Load() {
		s.ReadsDown.Store(true)
	}
	return ErrAnswerLost
}

// take takes one from n, if it is positive.
func take(n *atomic.Int64) bool {
	for {
		v := n.Load()
		if v <= 0 {
			return false
		}
		if n.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

// Get implements store.KeyStore.
func (s *LostAnswerStore) Get(ctx context.Context, id string) (store.Key, error) {
	if s.ReadsDown.Load() {
		return store.Key{}, ErrStoreDown
	}
	return s.Store.Get(ctx, id)
}

// GetPlan implements store.PlanStore.
func (s *LostAnswerStore) GetPlan(ctx context.Context, owner string) (store.Plan, error) {
	if s.ReadsDown.Load() {
		return store.Plan{}, ErrStoreDown
	}
	return s.Store.GetPlan(ctx, owner)
}

// Create implements store.KeyStore.
func (s *LostAnswerStore) Create(ctx context.Context, k store.Key) error {
	return s.write(func() error { return s.Store.Create(ctx, k) })
}

// CreateCapped implements store.KeyStore.
func (s *LostAnswerStore) CreateCapped(ctx context.Context, k store.Key, maxActive int, now time.Time) error {
	return s.write(func() error { return s.Store.CreateCapped(ctx, k, maxActive, now) })
}

// Revoke implements store.KeyStore.
func (s *LostAnswerStore) Revoke(ctx context.Context, id string, at time.Time) (store.Key, error) {
	var k store.Key
	err := s.write(func() (err error) { k, err = s.Store.Revoke(ctx, id, at); return err })
	if err != nil {
		return store.Key{}, err
	}
	return k, nil
}

// Delete implements store.KeyStore.
func (s *LostAnswerStore) Delete(ctx context.Context, id string) error {
	return s.write(func() error { return s.Store.Delete(ctx, id) })
}

// Rotate implements store.KeyStore.
func (s *LostAnswerStore) Rotate(ctx context.Context, id string, replacement store.Key, graceEnd time.Time) (store.Key, error) {
	var old store.Key
	err := s.write(func() (err error) { old, err = s.Store.Rotate(ctx, id, replacement, graceEnd); return err })
	if err != nil {
		return store.Key{}, err
	}
	return old, nil
}

// RotateCapped implements store.KeyStore.
func (s *LostAnswerStore) RotateCapped(ctx context.Context, id string, replacement store.Key, graceEnd time.Time, maxActive int) (store.Key, error) {
	var old store.Key
	err := s.write(func() (err error) {
		old, err = s.Store.RotateCapped(ctx, id, replacement, graceEnd, maxActive)
		return err
	})
	if err != nil {
		return store.Key{}, err
	}
	return old, nil
}

// SetPlan implements store.PlanStore.
func (s *LostAnswerStore) SetPlan(ctx context.Context, p store.Plan) error {
	return s.write(func() error { return s.Store.SetPlan(ctx, p) })
}

// DeletePlan implements store.PlanStore.
func (s *LostAnswerStore) DeletePlan(ctx context.Context, owner string) error {
	return s.write(func() error { return s.Store.DeletePlan(ctx, owner) })
}

// AddUsage implements store.UsageStore.
func (s *LostAnswerStore) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	return s.write(func() error { return s.Store.AddUsage(ctx, instance, seq, counts) })
}

// RecordLeak implements store.LeakStore.
func (s *LostAnswerStore) RecordLeak(ctx context.Context, id string, at time.Time, url string) (store.Key, error) {
	var k store.Key
	err := s.write(func() (err error) { k, err = s.Store.RecordLeak(ctx, id, at, url); return err })
	if err != nil {
		return store.Key{}, err
	}
	return k, nil
}

// BeginExport implements store.BillingStore.
func (s *LostAnswerStore) BeginExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	return s.write(func() error { return s.Store.BeginExport(ctx, owner, day, a) })
}

// AdvanceExport implements store.BillingStore.
func (s *LostAnswerStore) AdvanceExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	return s.write(func() error { return s.Store.AdvanceExport(ctx, owner, day, a) })
}
