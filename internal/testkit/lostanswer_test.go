package testkit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// TestLostAnswerStore: a write whose answer is lost is applied and answered
// ErrAnswerLost, once per loss asked for; a write the store refuses keeps
// its answer and uses up no loss.
func TestLostAnswerStore(t *testing.T) {
	s := &testkit.LostAnswerStore{Store: memstore.New()}
	_, k := testkit.MintKey(t, s, "acme")
	ctx := context.Background()
	s.Lose.Store(1)
	if _, err := s.Revoke(ctx, "missing", testkit.T0); !errors.Is(err, store.ErrKeyNotFound) {
		t.Errorf("Revoke of no key = %v, want ErrKeyNotFound", err)
	}
	if _, err := s.Revoke(ctx, k.ID, testkit.T0); !errors.Is(err, testkit.ErrAnswerLost) {
		t.Errorf("Revoke = %v, want ErrAnswerLost", err)
	}
	if got, err := s.Get(ctx, k.ID); err != nil || got.RevokedAt.IsZero() {
		t.Errorf("the revoke whose answer was lost was not applied: %+v, %v", got, err)
	}
	if err := s.Delete(ctx, k.ID); err != nil || s.Lost.Load() != 1 {
		t.Errorf("Delete after the one loss = %v (lost %d), want nil (lost 1)", err, s.Lost.Load())
	}
}
