package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// A write can be applied and its answer lost: a deadline that ends while the
// commit is on its way, a connection reset, UNAVAILABLE. The Firestore
// client even resends a commit whose answer it lost, and reports the
// resent one's failure (see internal/faultproxy). So an error from a write
// proves, in general, nothing about what the store holds; ConfirmWrites
// finds out by reading back.

// Errors of writes whose outcome is known or not; compare with errors.Is.
var (
	// ErrNotApplied, wrapped, is a store's answer to a write that it knows
	// it did not apply: it failed before its commit was sent (the
	// transaction could not begin, a read in it failed, no client).
	ErrNotApplied = errors.New("write not applied")
	// ErrOutcomeUnknown, wrapped with the write's error and the read's, is
	// ConfirmWrites' answer to a write whose outcome was unknown and whose
	// read-back failed too: the write may or may not have taken effect.
	ErrOutcomeUnknown = errors.New("the write's outcome is unknown")
)

// InDoubt reports whether a write that answered err may have been applied
// all the same: any error but an answer that the store refused the write
// (not found, exists, inactive, replaced, limit reached, invalid owner or
// plan, no plan) or
// one that proves nothing was applied (ErrNotApplied).
// It is the one place keygate decides that a write's outcome is unknown.
func InDoubt(err error) bool {
	for _, known := range []error{ErrNotApplied, ErrKeyNotFound, ErrKeyExists,
		ErrKeyInactive, ErrKeyReplaced, ErrKeyLimitReached, ErrInvalidOwner, ErrInvalidPlan, ErrPlanNotFound} {
		if errors.Is(err, known) {
			return false
		}
	}
	return err != nil
}

// ConfirmWrites returns s with the outcome of its key and plan writes made
// known before they answer: a write that answers an error InDoubt reads back
// what it wrote, with a context of its own bounded by d (the write's may be
// what ended), and answers as if its answer had arrived: success for a
// write that took effect (a created key or rotation stored, a revocation,
// deletion or plan in place), its own error for one that did not, and
// ErrOutcomeUnknown when the read fails too. The Gate and the apikey CLI
// use it over store.WithTimeout. Usage writes pass through: the meter keeps
// a batch in doubt until it is proven.
//
// A key's ID is the hash of a key minted for the write, so a key stored
// under it is the one written. A write still on its way when the read is
// made could land after it; the store's deadline makes that rare.
func ConfirmWrites(s Store, d time.Duration) Store { return confirmStore{s, d} }

type confirmStore struct {
	Store
	d time.Duration
}

// confirm runs write, unless ctx has ended (then nothing is sent), and if
// its error is in doubt, read says whether it took effect, and with what
// answer.
func confirm[T any](ctx context.Context, c confirmStore, op string, write func(context.Context) (T, error),
	read func(ctx context.Context) (answer T, applied bool, err error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	answer, err := write(ctx)
	if !InDoubt(err) {
		return answer, err
	}
	markDoubt(ctx)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.d)
	defer cancel()
	answer, applied, readErr := read(rctx)
	switch {
	case readErr != nil:
		return zero, fmt.Errorf("%w: %s: %w; reading it back: %w", ErrOutcomeUnknown, op, err, readErr)
	case applied:
		return answer, nil
	}
	return zero, err
}

// none adapts a write that answers only an error to confirm.
func none(write func(context.Context) error) func(context.Context) (struct{}, error) {
	return func(ctx context.Context) (struct{}, error) { return struct{}{}, write(ctx) }
}

// holds reads k back: stored as it was written.
func (c confirmStore) holds(ctx context.Context, k Key) (struct{}, bool, error) {
	got, err := c.Store.Get(ctx, k.ID)
	if errors.Is(err, ErrKeyNotFound) {
		return struct{}{}, false, nil
	}
	return struct{}{}, err == nil && reflect.DeepEqual(Stored(got), Stored(k)), err
}

// gone reads the key id back: not stored.
func (c confirmStore) gone(ctx context.Context, id string) (struct{}, bool, error) {
	_, err := c.Store.Get(ctx, id)
	if errors.Is(err, ErrKeyNotFound) {
		return struct{}{}, true, nil
	}
	return struct{}{}, false, err
}

func (c confirmStore) Create(ctx context.Context, k Key) error {
	_, err := confirm(ctx, c, "create key", none(func(ctx context.Context) error { return c.Store.Create(ctx, k) }),
		func(ctx context.Context) (struct{}, bool, error) { return c.holds(ctx, k) })
	return err
}

func (c confirmStore) CreateCapped(ctx context.Context, k Key, maxActive int, now time.Time) error {
	_, err := confirm(ctx, c, "create key", none(func(ctx context.Context) error { return c.Store.CreateCapped(ctx, k, maxActive, now) }),
		func(ctx context.Context) (struct{}, bool, error) { return c.holds(ctx, k) })
	return err
}

// Revoke answers the key as stored once it is revoked, by this call or an
// earlier one, as KeyStore.Revoke does.
func (c confirmStore) Revoke(ctx context.Context, id string, at time.Time) (Key, error) {
	return confirm(ctx, c, "revoke key", func(ctx context.Context) (Key, error) { return c.Store.Revoke(ctx, id, at) },
		func(ctx context.Context) (Key, bool, error) {
			k, err := c.Store.Get(ctx, id)
			if errors.Is(err, ErrKeyNotFound) {
				return Key{}, false, nil
			}
			return k, err == nil && !k.RevokedAt.IsZero(), err
		})
}

func (c confirmStore) Delete(ctx context.Context, id string) error {
	_, err := confirm(ctx, c, "delete key", none(func(ctx context.Context) error { return c.Store.Delete(ctx, id) }),
		func(ctx context.Context) (struct{}, bool, error) { return c.gone(ctx, id) })
	return err
}

// Rotate answers the old key as stored once the replacement is: they are
// written in one transaction.
func (c confirmStore) Rotate(ctx context.Context, id string, replacement Key, graceEnd time.Time) (Key, error) {
	return confirm(ctx, c, "rotate key", func(ctx context.Context) (Key, error) { return c.Store.Rotate(ctx, id, replacement, graceEnd) },
		func(ctx context.Context) (Key, bool, error) { return c.rotated(ctx, id, replacement) })
}

// RotateCapped is confirmed as Rotate is: a replacement stored was within
// the cap, since the count is written with it.
func (c confirmStore) RotateCapped(ctx context.Context, id string, replacement Key, graceEnd time.Time, maxActive int) (Key, error) {
	return confirm(ctx, c, "rotate key", func(ctx context.Context) (Key, error) {
		return c.Store.RotateCapped(ctx, id, replacement, graceEnd, maxActive)
	}, func(ctx context.Context) (Key, bool, error) { return c.rotated(ctx, id, replacement) })
}

// rotated reads a rotation of key id back: the replacement stored, and the
// old key as stored.
func (c confirmStore) rotated(ctx context.Context, id string, replacement Key) (Key, bool, error) {
	if _, stored, err := c.holds(ctx, replacement); !stored || err != nil {
		return Key{}, false, err
	}
	old, err := c.Store.Get(ctx, id)
	return old, err == nil, err
}

// SetPlan fixes the plan's UpdatedAt, so that it can be recognised. A plan
// the store refuses (ErrInvalidPlan) is no write in doubt, and is not read
// back.
func (c confirmStore) SetPlan(ctx context.Context, p Plan) error {
	p = StoredPlan(p)
	_, err := confirm(ctx, c, "set plan", none(func(ctx context.Context) error { return c.Store.SetPlan(ctx, p) }),
		func(ctx context.Context) (struct{}, bool, error) {
			got, err := c.Store.GetPlan(ctx, p.Owner)
			if errors.Is(err, ErrPlanNotFound) {
				return struct{}{}, false, nil
			}
			return struct{}{}, err == nil && reflect.DeepEqual(StoredPlan(got), p), err
		})
	return err
}

func (c confirmStore) DeletePlan(ctx context.Context, owner string) error {
	_, err := confirm(ctx, c, "delete plan", none(func(ctx context.Context) error { return c.Store.DeletePlan(ctx, owner) }),
		func(ctx context.Context) (struct{}, bool, error) {
			_, err := c.Store.GetPlan(ctx, owner)
			if errors.Is(err, ErrPlanNotFound) {
				return struct{}{}, true, nil
			}
			return struct{}{}, false, err
		})
	return err
}
