package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/apikey/storetest"
	"github.com/keygate/keygate/internal/testkit"
)

// TestConfirmWritesContract runs the store contract on ConfirmWrites over
// the memory store, and over a store that loses the answer of every write:
// reading back makes a lost answer indistinguishable from a received one.
// Usage and export writes pass through ConfirmWrites (the meter proves its
// batches, the billing export its attempts, by reading them on its next
// run), so the lossy store keeps their answers.
func TestConfirmWritesContract(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return store.ConfirmWrites(memstore.New(), time.Minute) })
	})
	t.Run("every answer lost", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			mem := memstore.New()
			s := &testkit.LostAnswerStore{Store: mem}
			s.Lose.Store(math.MaxInt64)
			return store.ConfirmWrites(usageAnswered{s, mem}, time.Minute)
		})
	})
}

// usageAnswered is a LostAnswerStore whose usage and export writes are
// answered.
type usageAnswered struct {
	*testkit.LostAnswerStore
	mem store.Store
}

func (s usageAnswered) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	return s.mem.AddUsage(ctx, instance, seq, counts)
}

func (s usageAnswered) BeginExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	return s.mem.BeginExport(ctx, owner, day, a)
}

func (s usageAnswered) AdvanceExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	return s.mem.AdvanceExport(ctx, owner, day, a)
}

// confirmedWrite is one write of the keys API and the CLI, and how to tell
// from the store that it took effect.
type confirmedWrite struct {
	name    string
	write   func(ctx context.Context, s store.Store, k store.Key) error
	applied func(t *testing.T, s store.Store, k store.Key) bool
}

// confirmedWrites are the writes ConfirmWrites reads back, each on a stored
// key k of owner acme, which has a plan.
var confirmedWrites = []confirmedWrite{
	{"create", func(ctx context.Context, s store.Store, _ store.Key) error {
		return s.Create(ctx, newKey)
	}, func(t *testing.T, s store.Store, _ store.Key) bool { return stored(t, s, newKey.ID) }},
	{"capped create", func(ctx context.Context, s store.Store, _ store.Key) error {
		return s.CreateCapped(ctx, newKey, 5, storetest.T0)
	}, func(t *testing.T, s store.Store, _ store.Key) bool { return stored(t, s, newKey.ID) }},
	{"revoke", func(ctx context.Context, s store.Store, k store.Key) error {
		got, err := s.Revoke(ctx, k.ID, storetest.T0)
		if err == nil && !got.RevokedAt.Equal(storetest.T0) {
			return errors.New("Revoke answered a key that is not revoked")
		}
		return err
	}, func(t *testing.T, s store.Store, k store.Key) bool {
		got, err := s.Get(t.Context(), k.ID)
		return err == nil && !got.RevokedAt.IsZero()
	}},
	{"rotate", func(ctx context.Context, s store.Store, k store.Key) error {
		old, err := s.Rotate(ctx, k.ID, newKey, storetest.T0.Add(time.Hour))
		if err == nil && !old.ExpiresAt.Equal(storetest.T0.Add(time.Hour)) {
			return errors.New("Rotate answered the old key without its new expiry")
		}
		return err
	}, func(t *testing.T, s store.Store, _ store.Key) bool { return stored(t, s, newKey.ID) }},
	{"capped rotate", func(ctx context.Context, s store.Store, k store.Key) error {
		old, err := s.RotateCapped(ctx, k.ID, newKey, storetest.T0.Add(time.Hour), 5)
		if err == nil && (!old.ExpiresAt.Equal(storetest.T0.Add(time.Hour)) || old.ReplacedBy != newKey.ID) {
			return errors.New("RotateCapped answered the old key without its new expiry and replacement")
		}
		return err
	}, func(t *testing.T, s store.Store, _ store.Key) bool { return stored(t, s, newKey.ID) }},
	{"delete", func(ctx context.Context, s store.Store, k store.Key) error {
		return s.Delete(ctx, k.ID)
	}, func(t *testing.T, s store.Store, k store.Key) bool { return !stored(t, s, k.ID) }},
	{"record leak", func(ctx context.Context, s store.Store, k store.Key) error {
		got, err := s.RecordLeak(ctx, k.ID, storetest.T0, "https://github.com/o/r")
		if err == nil && (!got.LeakedAt.Equal(storetest.T0) || got.LeakURL != "https://github.com/o/r") {
			return errors.New("RecordLeak answered a key without the leak")
		}
		return err
	}, func(t *testing.T, s store.Store, k store.Key) bool {
		got, err := s.Get(t.Context(), k.ID)
		return err == nil && !got.LeakedAt.IsZero()
	}},
	{"set plan", func(ctx context.Context, s store.Store, _ store.Key) error {
		return s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 9})
	}, func(t *testing.T, s store.Store, _ store.Key) bool {
		p, err := s.GetPlan(t.Context(), "acme")
		return err == nil && p.MaxKeys == 9
	}},
	{"delete plan", func(ctx context.Context, s store.Store, _ store.Key) error {
		return s.DeletePlan(ctx, "acme")
	}, func(t *testing.T, s store.Store, _ store.Key) bool {
		_, err := s.GetPlan(t.Context(), "acme")
		return errors.Is(err, store.ErrPlanNotFound)
	}},
}

// newKey is the key the writes create, at T0.
var newKey = func() store.Key {
	_, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", Name: "new", CreatedAt: storetest.T0})
	if err != nil {
		panic(err)
	}
	return k
}()

func stored(t *testing.T, s store.Store, id string) bool {
	t.Helper()
	_, err := s.Get(t.Context(), id)
	if err != nil && !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestConfirmWrites: for each write, a lost answer of a write that was
// applied is answered success; a write that was not applied keeps its
// error; when the read-back fails too, the answer is ErrOutcomeUnknown,
// whether the write was applied or not.
func TestConfirmWrites(t *testing.T) {
	for _, w := range confirmedWrites {
		for _, c := range []struct {
			name      string
			fault     func(s *testkit.LostAnswerStore)
			applied   bool
			wantErr   error
			readsDown bool
		}{
			{"answer lost", func(s *testkit.LostAnswerStore) { s.Lose.Store(1) }, true, nil, false},
			{"not applied", func(s *testkit.LostAnswerStore) { s.Drop.Store(1) }, false, testkit.ErrAnswerLost, false},
			{"answer lost, read-back fails", func(s *testkit.LostAnswerStore) { s.Lose.Store(1) }, true, store.ErrOutcomeUnknown, true},
			{"not applied, read-back fails", func(s *testkit.LostAnswerStore) { s.Drop.Store(1) }, false, store.ErrOutcomeUnknown, true},
		} {
			t.Run(w.name+"/"+c.name, func(t *testing.T) {
				lossy := &testkit.LostAnswerStore{Store: memstore.New()}
				_, k := storetest.MintKey(t, lossy, "acme")
				if err := lossy.SetPlan(t.Context(), store.Plan{Owner: "acme", MaxKeys: 5}); err != nil {
					t.Fatal(err)
				}
				s := store.ConfirmWrites(lossy, time.Second)
				c.fault(lossy)
				lossy.ReadsDown.Store(c.readsDown)
				err := w.write(t.Context(), s, k)
				lossy.ReadsDown.Store(false)
				if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
					t.Errorf("answer %v, want %v", err, c.wantErr)
				}
				if got := w.applied(t, lossy, k); got != c.applied {
					t.Errorf("applied %v, want %v", got, c.applied)
				}
			})
		}
	}
}

// TestInDoubt: the errors that prove a write's outcome, and those that do
// not.
func TestInDoubt(t *testing.T) {
	for _, err := range []error{nil, store.ErrKeyNotFound, store.ErrKeyExists, store.ErrKeyInactive,
		store.ErrKeyReplaced, store.ErrKeyLimitReached, store.ErrInvalidOwner, store.ErrInvalidPlan, store.ErrPlanNotFound,
		fmt.Errorf("%w: %w", store.ErrNotApplied, context.DeadlineExceeded)} {
		if store.InDoubt(err) {
			t.Errorf("InDoubt(%v) = true", err)
		}
	}
	for _, err := range []error{context.DeadlineExceeded, context.Canceled, testkit.ErrAnswerLost, errors.New("reset")} {
		if !store.InDoubt(err) {
			t.Errorf("InDoubt(%v) = false", err)
		}
	}
}

// TestConfirmWritesRefusedRotation: a capped rotation that the store
// refuses, for a key replaced already or for the cap, is that answer, not
// read back: with every read failing, it is still ErrKeyReplaced or
// ErrKeyLimitReached, not ErrOutcomeUnknown.
func TestConfirmWritesRefusedRotation(t *testing.T) {
	lossy := &testkit.LostAnswerStore{Store: memstore.New()}
	_, k := storetest.MintKey(t, lossy, "acme")
	_, other := storetest.MintKey(t, lossy, "acme")
	s := store.ConfirmWrites(lossy, time.Second)
	if _, err := s.RotateCapped(t.Context(), k.ID, newKey, storetest.T0.Add(time.Hour), 2); err != nil {
		t.Fatal(err)
	}
	lossy.ReadsDown.Store(true)
	for id, want := range map[string]error{k.ID: store.ErrKeyReplaced, other.ID: store.ErrKeyLimitReached} {
		_, repl, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: storetest.T0})
		if _, err := s.RotateCapped(t.Context(), id, repl, storetest.T0.Add(time.Hour), 2); !errors.Is(err, want) || errors.Is(err, store.ErrOutcomeUnknown) {
			t.Errorf("RotateCapped = %v, want %v", err, want)
		}
	}
}

// TestConfirmWritesRefusedPlan: a plan the store refuses is that answer,
// not read back: with every read failing, it is ErrInvalidPlan with the
// rule's reason, not ErrOutcomeUnknown.
func TestConfirmWritesRefusedPlan(t *testing.T) {
	lossy := &testkit.LostAnswerStore{Store: memstore.New()}
	lossy.ReadsDown.Store(true)
	s := store.ConfirmWrites(lossy, time.Second)
	err := s.SetPlan(t.Context(), store.Plan{Owner: "acme", MaxKeys: -1})
	if le, ok := errors.AsType[*keyrules.LimitError](err); !errors.Is(err, store.ErrInvalidPlan) || !ok || le.Field != "max-keys" || errors.Is(err, store.ErrOutcomeUnknown) {
		t.Errorf("SetPlan(max keys -1) = %v, want ErrInvalidPlan with a max-keys LimitError", err)
	}
}
