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
// Lose writes (key and plan writes and AddUsage) are applied by the wrapped
// store and answered ErrAnswerLost. A write the wrapped store refuses (not
// found, exists, inactive, limit reached, invalid) applied nothing and is
// answered as the store answered it. Reads pass unchanged.
type LostAnswerStore struct {
	store.Store
	Lose atomic.Int64 // writes still to apply and lose the answer of
	Lost atomic.Int64 // writes applied whose answer was lost
}

// lose answers err, the wrapped store's answer to a write, or ErrAnswerLost
// in its place if the write applied and an answer is to be lost.
func (s *LostAnswerStore) lose(err error) error {
	if err != nil {
		return err
	}
	for {
		n := s.Lose.Load()
		if n <= 0 {
			return nil
		}
		if s.Lose.CompareAndSwap(n, n-1) {
			s.Lost.Add(1)
			return ErrAnswerLost
		}
	}
}

// Create implements store.KeyStore.
func (s *LostAnswerStore) Create(ctx context.Context, k store.Key) error {
	return s.lose(s.Store.Create(ctx, k))
}

// CreateCapped implements store.KeyStore.
func (s *LostAnswerStore) CreateCapped(ctx context.Context, k store.Key, maxActive int, now time.Time) error {
	return s.lose(s.Store.CreateCapped(ctx, k, maxActive, now))
}

// Revoke implements store.KeyStore.
func (s *LostAnswerStore) Revoke(ctx context.Context, id string, at time.Time) (store.Key, error) {
	k, err := s.Store.Revoke(ctx, id, at)
	if err = s.lose(err); err != nil {
		return store.Key{}, err
	}
	return k, nil
}

// Delete implements store.KeyStore.
func (s *LostAnswerStore) Delete(ctx context.Context, id string) error {
	return s.lose(s.Store.Delete(ctx, id))
}

// Rotate implements store.KeyStore.
func (s *LostAnswerStore) Rotate(ctx context.Context, id string, replacement store.Key, graceEnd time.Time) (store.Key, error) {
	old, err := s.Store.Rotate(ctx, id, replacement, graceEnd)
	if err = s.lose(err); err != nil {
		return store.Key{}, err
	}
	return old, nil
}

// SetPlan implements store.PlanStore.
func (s *LostAnswerStore) SetPlan(ctx context.Context, p store.Plan) error {
	return s.lose(s.Store.SetPlan(ctx, p))
}

// DeletePlan implements store.PlanStore.
func (s *LostAnswerStore) DeletePlan(ctx context.Context, owner string) error {
	return s.lose(s.Store.DeletePlan(ctx, owner))
}

// AddUsage implements store.UsageStore.
func (s *LostAnswerStore) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	return s.lose(s.Store.AddUsage(ctx, instance, seq, counts))
}
