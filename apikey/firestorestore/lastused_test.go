package firestorestore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// TestFlushesOfOneKeyAtOnce: four processes (clients) flush batches of the
// same keys at once while one of the keys is revoked and another rotated:
// the flushes read the key documents to move last_used_at, so they
// contend with each other and with the key's own writes. Every batch is
// applied exactly once, last_used_at is set, and the revocation and the
// rotation keep what they wrote.
func TestFlushesOfOneKeyAtOnce(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	var keys []store.Key
	for i := range 3 {
		_, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", Name: fmt.Sprint("k", i), CreatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	const clients, batches = 4, 5
	today := store.DayOf(time.Now())
	before := time.Now().Truncate(time.Microsecond)
	var wg sync.WaitGroup
	errs := make(chan error, clients*batches+2)
	for c := range clients {
		cs := New(Config{Project: s.project})
		t.Cleanup(func() { cs.Close() })
		wg.Go(func() {
			for seq := range batches {
				var counts []store.UsageCount
				for _, k := range keys {
					counts = append(counts, store.UsageCount{KeyID: k.ID, Owner: "acme", Day: today, Requests: 1})
				}
				errs <- cs.AddUsage(ctx, fmt.Sprint("instance-", c), int64(seq+1), counts)
			}
		})
	}
	var revokedAt time.Time
	_, repl, err := keyrules.Mint("kg", keyrules.Replacement(keys[2], t0))
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		k, err := s.Revoke(ctx, keys[1].ID, t0.Add(time.Hour))
		revokedAt = k.RevokedAt
		errs <- err
	})
	wg.Go(func() {
		repl.CreatedAt = time.Now()
		_, err := s.Rotate(ctx, keys[2].ID, repl, time.Now().Add(time.Hour))
		errs <- err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a write failed under contention: %v", err)
		}
	}
	after := time.Now()
	for i, k := range keys {
		got, err := s.Get(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt.Before(before) || got.LastUsedAt.After(after) {
			t.Errorf("k%d: last used %v, want between %v and %v", i, got.LastUsedAt, before, after)
		}
		if n, err := s.MonthlyUsage(ctx, k.ID, today.Month()); err != nil || n != clients*batches {
			t.Errorf("k%d: month total %d, %v; want %d", i, n, err, clients*batches)
		}
	}
	if got, _ := s.Get(ctx, keys[1].ID); !got.RevokedAt.Equal(revokedAt) || revokedAt.IsZero() {
		t.Errorf("the revoked key's revoked_at = %v, want %v", got.RevokedAt, revokedAt)
	}
	if got, _ := s.Get(ctx, keys[2].ID); got.ReplacedBy != repl.ID || got.ExpiresAt.IsZero() {
		t.Errorf("the rotated key: replaced_by %q, expires %v; want %s and the grace's end", got.ReplacedBy, got.ExpiresAt, repl.ID)
	}
}
