package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// CappedRotate checks KeyStore.RotateCapped and the rule of Rotate that a
// key replaced already is not rotated again (ErrKeyReplaced): an owner
// within its cap goes one key over it by a rotation in progress, never two,
// whether one key is rotated again and again, a chain of replacements is,
// or rotations run at once.
func CappedRotate(t *testing.T, newStore NewStore) { runCases(t, newStore, cappedRotateCases) }

// grace is the grace of the checks' rotations: 720h, the longest.
const grace = 720 * time.Hour

var cappedRotateCases = []contractCase{
	{"a replaced key is not rotated again while its replacement is active", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, k := MintKey(t, s, "acme")
		first := rotation(t, k, T0)
		if _, err := s.RotateCapped(ctx, k.ID, first, T0.Add(grace), 3); err != nil {
			t.Fatal(err)
		}
		for name, rotate := range map[string]func(store.Key) (store.Key, error){
			"Rotate":       func(r store.Key) (store.Key, error) { return s.Rotate(ctx, k.ID, r, T0.Add(grace)) },
			"RotateCapped": func(r store.Key) (store.Key, error) { return s.RotateCapped(ctx, k.ID, r, T0.Add(grace), 100) },
		} {
			again := rotation(t, k, T0.Add(time.Minute))
			if _, err := rotate(again); !errors.Is(err, store.ErrKeyReplaced) {
				t.Errorf("%s of a replaced key = %v, want ErrKeyReplaced", name, err)
			}
			if _, err := s.Get(ctx, again.ID); !errors.Is(err, store.ErrKeyNotFound) {
				t.Errorf("%s of a replaced key stored a replacement: %v", name, err)
			}
		}
		if got, err := s.Get(ctx, k.ID); err != nil || got.ReplacedBy != first.ID {
			t.Errorf("the replaced key: replaced by %q, %v; want %s", got.ReplacedBy, err, first.ID)
		}
		// Its replacement revoked (say its key was lost with a rotation's
		// answer), the key may be rotated again, and names the new one.
		if _, err := s.Revoke(ctx, first.ID, T0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		second := rotation(t, k, T0.Add(2*time.Minute))
		if got, err := s.RotateCapped(ctx, k.ID, second, T0.Add(grace), 3); err != nil || got.ReplacedBy != second.ID {
			t.Fatalf("RotateCapped once the replacement is revoked = replaced by %q, %v; want %s", got.ReplacedBy, err, second.ID)
		}
		// And so once it is deleted.
		if err := s.Delete(ctx, second.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rotate(ctx, k.ID, rotation(t, k, T0.Add(3*time.Minute)), T0.Add(grace)); err != nil {
			t.Errorf("Rotate once the replacement is deleted = %v", err)
		}
	}},
	{"a capped rotation goes one key over the cap, not two", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		var keys []store.Key
		for range 3 {
			keys = append(keys, capped(t, s, "acme", 3, nil))
		}
		MintKey(t, s, "other") // another owner's key does not count
		if _, err := s.RotateCapped(ctx, keys[0].ID, rotation(t, keys[0], T0), T0.Add(time.Hour), 3); err != nil {
			t.Fatalf("RotateCapped at the cap = %v", err)
		}
		refused := rotation(t, keys[1], T0)
		if _, err := s.RotateCapped(ctx, keys[1].ID, refused, T0.Add(time.Hour), 3); !errors.Is(err, store.ErrKeyLimitReached) {
			t.Fatalf("a second RotateCapped during the first's grace = %v, want ErrKeyLimitReached", err)
		}
		if _, err := s.Get(ctx, refused.ID); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("the refused rotation stored its replacement: %v", err)
		}
		if got, err := s.Get(ctx, keys[1].ID); err != nil || !reflect.DeepEqual(got, keys[1]) {
			t.Errorf("the key of the refused rotation = %+v, %v; want it unchanged", got, err)
		}
		if n := activeKeys(t, s, "acme", T0); n != 4 {
			t.Errorf("%d active keys, want 4", n)
		}
		// A rotation without a grace adds no active key: never refused.
		noGrace := rotation(t, keys[1], T0)
		if _, err := s.RotateCapped(ctx, keys[1].ID, noGrace, T0, 3); err != nil {
			t.Errorf("RotateCapped without a grace past the cap = %v", err)
		}
		if n := activeKeys(t, s, "acme", T0); n != 4 {
			t.Errorf("%d active keys after a rotation without a grace, want 4 still", n)
		}
		keys[1] = store.Stored(noGrace)
		// A higher cap lets it in; so does the first grace's end.
		if _, err := s.RotateCapped(ctx, keys[1].ID, rotation(t, keys[1], T0), T0.Add(time.Hour), 4); err != nil {
			t.Errorf("RotateCapped with cap 4 = %v", err)
		}
		late := T0.Add(2 * time.Hour)
		if _, err := s.RotateCapped(ctx, keys[2].ID, rotation(t, keys[2], late), late.Add(time.Hour), 3); err != nil {
			t.Errorf("RotateCapped once the graces ended = %v", err)
		}
	}},
	{"capped rotation of a key whose owner is invalid is ErrInvalidOwner", func(t *testing.T, s store.Store) {
		_, k := MintKey(t, s, "a/b")
		if _, err := s.RotateCapped(context.Background(), k.ID, rotation(t, k, T0), T0.Add(time.Hour), 3); !errors.Is(err, store.ErrInvalidOwner) {
			t.Errorf("RotateCapped = %v, want ErrInvalidOwner", err)
		}
	}},
	{"ten rotations of one key with a grace at cap 3: never more than 4 active keys", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		k := capped(t, s, "acme", 3, nil)
		capped(t, s, "acme", 3, nil)
		most, ok := 0, 0
		for i := range 10 {
			at := T0.Add(time.Duration(i) * time.Minute)
			_, err := s.RotateCapped(ctx, k.ID, rotation(t, k, at), at.Add(grace), 3)
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrKeyReplaced):
				t.Errorf("rotation %d = %v, want nil or ErrKeyReplaced", i+1, err)
			}
			most = max(most, activeKeys(t, s, "acme", at))
		}
		t.Logf("ten rotations of one key: %d applied, at most %d active keys", ok, most)
		if ok != 1 || most > 4 {
			t.Errorf("%d rotations applied, at most %d active keys; want 1 and at most 4", ok, most)
		}
	}},
	{"ten rotations of one key at once: one applies", func(t *testing.T, s store.Store) {
		k := capped(t, s, "acme", 3, nil)
		capped(t, s, "acme", 3, nil)
		errs := rotateAtOnce(t, s, []store.Key{k, k, k, k, k, k, k, k, k, k}, 3)
		ok, replaced, _, other := tally(errs)
		n := activeKeys(t, s, "acme", T0)
		t.Logf("ten rotations of one key at once: %d applied, %d ErrKeyReplaced, %d active keys", ok, replaced, n)
		if ok != 1 || replaced != 9 || len(other) > 0 || n > 4 {
			t.Errorf("%d applied, %d replaced, other errors %q, %d active keys; want 1, 9, none, at most 4", ok, replaced, other, n)
		}
	}},
	{"rotations of every key at the cap at once: one applies", func(t *testing.T, s store.Store) {
		var keys []store.Key
		for range 3 {
			keys = append(keys, capped(t, s, "acme", 3, nil))
		}
		errs := rotateAtOnce(t, s, append(append(keys, keys...), keys...), 3)
		ok, replaced, limited, other := tally(errs)
		n := activeKeys(t, s, "acme", T0)
		t.Logf("nine rotations of three keys at the cap at once: %d applied, %d ErrKeyReplaced, %d ErrKeyLimitReached, %d active keys", ok, replaced, limited, n)
		if ok != 1 || replaced+limited != 8 || len(other) > 0 || n != 4 {
			t.Errorf("%d applied, %d replaced, other errors %q, %d active keys; want 1, the rest refused, 4", ok, replaced, other, n)
		}
	}},
	{"a chain of rotations grows to the cap and one over, no further", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		k := capped(t, s, "acme", 3, nil)
		capped(t, s, "acme", 3, nil)
		most, applied := 0, 0
		for i := range 10 { // A → A', then A' → A'', …, each within the last's grace
			at := T0.Add(time.Duration(i) * time.Minute)
			repl := rotation(t, k, at)
			_, err := s.RotateCapped(ctx, k.ID, repl, at.Add(grace), 3)
			switch {
			case err == nil:
				applied++
				k = store.Stored(repl)
			case !errors.Is(err, store.ErrKeyLimitReached):
				t.Fatalf("rotation %d of the chain = %v, want nil or ErrKeyLimitReached", i+1, err)
			}
			most = max(most, activeKeys(t, s, "acme", at))
		}
		t.Logf("a chain of ten rotations at cap 3: %d applied, at most %d active keys", applied, most)
		if applied != 2 || most != 4 {
			t.Errorf("%d rotations of the chain applied, at most %d active keys; want 2 and 4", applied, most)
		}
		// Once the graces end, the chain goes on, within the cap again.
		late := T0.Add(grace + time.Hour)
		if _, err := s.RotateCapped(ctx, k.ID, rotation(t, k, late), late.Add(grace), 3); err != nil {
			t.Errorf("RotateCapped of the chain's last key after the graces = %v", err)
		}
		if n := activeKeys(t, s, "acme", late); n != 3 {
			t.Errorf("%d active keys after the graces and one rotation, want 3", n)
		}
	}},
}

// rotation mints the replacement of k at now.
func rotation(t *testing.T, k store.Key, now time.Time) store.Key {
	t.Helper()
	_, r, err := keyrules.Mint("kg", keyrules.Replacement(k, now))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rotateAtOnce rotates each of keys at T0 at once, capped at maxActive, and
// returns their errors.
func rotateAtOnce(t *testing.T, s store.KeyStore, keys []store.Key, maxActive int) []error {
	t.Helper()
	repls := make([]store.Key, len(keys))
	for i, k := range keys {
		repls[i] = rotation(t, k, T0)
	}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, k := range keys {
		wg.Go(func() {
			<-start
			_, errs[i] = s.RotateCapped(context.Background(), k.ID, repls[i], T0.Add(grace), maxActive)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// tally counts the rotations that applied, those refused ErrKeyReplaced
// and those refused ErrKeyLimitReached, and lists the other errors.
func tally(errs []error) (ok, replaced, limited int, other []string) {
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrKeyReplaced):
			replaced++
		case errors.Is(err, store.ErrKeyLimitReached):
			limited++
		default:
			other = append(other, err.Error())
		}
	}
	return ok, replaced, limited, other
}

// activeKeys counts owner's keys active at now, from its listing.
func activeKeys(t *testing.T, s store.KeyStore, owner string, now time.Time) int {
	t.Helper()
	n := 0
	for k, err := range keyrules.OwnerKeys(context.Background(), s, owner, store.MaxPageLimit) {
		if err != nil {
			t.Fatal(fmt.Errorf("listing %s's keys: %w", owner, err))
		}
		if k.Status(now) == store.StatusActive {
			n++
		}
	}
	return n
}
