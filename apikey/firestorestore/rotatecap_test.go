package firestorestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
)

// TestCappedRotationsAcrossClients: rotations at once from two clients, as
// from two instances, at cap 3: ten of one key (one applies, the others
// find it replaced), then one of each key of an owner at its cap, three
// times over (one applies, the others find the count past the cap or the
// key replaced). The count's precondition alone keeps them apart across
// clients; the owner never holds more than 4 active keys, and the count
// says what the keys say.
func TestCappedRotationsAcrossClients(t *testing.T) {
	_, project := emulator.Project(t)
	a, b := New(Config{Project: project}), New(Config{Project: project})
	t.Cleanup(func() { a.Close(); b.Close() })
	ctx := context.Background()
	const limit = 3
	create := func(owner string) store.Key {
		_, k, _ := keyrules.Mint("kg", store.Key{Owner: owner, CreatedAt: t0})
		if err := a.CreateCapped(ctx, k, limit, t0); err != nil {
			t.Fatal(err)
		}
		return k
	}
	rotateAtOnce := func(keys []store.Key) (applied, replaced, limited int) {
		errs := make([]error, len(keys))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, k := range keys {
			s := []*Store{a, b}[i%2]
			_, repl, _ := keyrules.Mint("kg", keyrules.Replacement(k, t0))
			wg.Go(func() {
				<-start
				_, errs[i] = s.RotateCapped(ctx, k.ID, repl, t0.Add(720*time.Hour), limit)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			switch {
			case err == nil:
				applied++
			case errors.Is(err, store.ErrKeyReplaced):
				replaced++
			case errors.Is(err, store.ErrKeyLimitReached):
				limited++
			default:
				t.Errorf("rotation %d: %v", i, err)
			}
		}
		return applied, replaced, limited
	}
	active := func(owner string) (keys, counted int) {
		page, err := a.ListByOwner(ctx, owner, nil, store.MaxPageLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			if k.Status(t0) == store.StatusActive {
				keys++
			}
		}
		client, err := a.Client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, err := a.readCount(ctx, client, owner, t0)
		if err != nil {
			t.Fatal(err)
		}
		return keys, int(c.active) - len(c.ended)
	}

	k := create("one")
	create("one")
	applied, replaced, _ := rotateAtOnce([]store.Key{k, k, k, k, k, k, k, k, k, k})
	n, counted := active("one")
	t.Logf("ten rotations of one key at once from two clients: %d applied, %d replaced; %d active keys, %d counted", applied, replaced, n, counted)
	if applied != 1 || replaced != 9 || n != 3 || counted != n {
		t.Errorf("%d applied, %d replaced, %d active keys, %d counted; want 1, 9, 3, 3", applied, replaced, n, counted)
	}

	keys := []store.Key{create("full"), create("full"), create("full")}
	applied, replaced, limited := rotateAtOnce(append(append(keys, keys...), keys...))
	n, counted = active("full")
	t.Logf("nine rotations of the three keys of an owner at its cap from two clients: %d applied, %d replaced, %d over the cap; %d active keys, %d counted", applied, replaced, limited, n, counted)
	if applied != 1 || replaced+limited != 8 || n != limit+1 || counted != n {
		t.Errorf("%d applied, %d refused, %d active keys, %d counted; want 1, 8, 4, 4", applied, replaced+limited, n, counted)
	}
}

// TestCappedRotationReadsFewDocuments: a capped rotation of a counted owner
// with 1,000 revoked keys reads its count and the ends due, at most 3
// documents, as a capped create does (besides the key, its end and its
// replacement).
func TestCappedRotationReadsFewDocuments(t *testing.T) {
	s := newTestStore(t)
	seedRevoked(t, s, "acme", 1_000)
	cappedCreateReads(t, s, "acme", 100, t0) // the first count
	_, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
	if err := s.CreateCapped(context.Background(), k, 100, t0); err != nil {
		t.Fatal(err)
	}
	before := s.cappedReads.Load()
	_, repl, _ := keyrules.Mint("kg", keyrules.Replacement(k, t0.Add(time.Minute)))
	if _, err := s.RotateCapped(context.Background(), k.ID, repl, t0.Add(time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if n := s.cappedReads.Load() - before; n > 3 {
		t.Errorf("a capped rotation of an owner with 1,000 revoked keys read %d count documents, want at most 3", n)
	}
}

// TestCappedRotationCountsAnOwnerFirst: the first capped write of an owner
// whose keys were never counted is a rotation of a key with an expiry: the
// count is written in the rotation's commit (one commit, so that a lost
// answer is read back as one write), with the old key ending at its
// grace's end, not at its old expiry.
func TestCappedRotationCountsAnOwnerFirst(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	_, expiring, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0, ExpiresAt: t0.Add(48 * time.Hour)})
	_, forever, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []store.Key{expiring, forever} { // as written before keys were counted
		if _, err := client.Collection(s.collection).Doc(k.ID).Create(ctx, encodeKey(k)); err != nil {
			t.Fatal(err)
		}
	}
	_, repl, _ := keyrules.Mint("kg", keyrules.Replacement(expiring, t0))
	if _, err := s.RotateCapped(ctx, expiring.ID, repl, t0.Add(time.Hour), 3); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Time
		want int64
	}{{t0, 3}, {t0.Add(2 * time.Hour), 2}} {
		got, err := s.readCount(ctx, client, "acme", c.at)
		if err != nil {
			t.Fatal(err)
		}
		if got.missing != nil || got.active-int64(len(got.ended)) != c.want {
			t.Errorf("the count at %v: %d active, %d ended, counted %v; want %d", c.at, got.active, len(got.ended), got.missing == nil, c.want)
		}
	}
}

// BenchmarkCappedRotate: a capped rotation against an uncapped one, for a
// new owner and one with 10,000 revoked keys (counted): the cap costs the
// count's read and precondition, whatever the owner's history. Each
// iteration rotates the last replacement (a chain), under a cap it never
// reaches.
//
//	FIRESTORE_EMULATOR_HOST=127.0.0.1:8096 go test -run NONE -bench '^BenchmarkCappedRotate$' -benchtime 30x ./apikey/firestorestore
func BenchmarkCappedRotate(b *testing.B) {
	_, project := emulator.Project(b)
	s := New(Config{Project: project})
	b.Cleanup(func() { s.Close() })
	seedRevoked(b, s, "old", 10_000)
	for _, capped := range []bool{false, true} {
		for _, owner := range []string{"new", "old"} {
			b.Run(fmt.Sprintf("capped=%v/owner=%s", capped, owner), func(b *testing.B) {
				ctx := context.Background()
				now := t0
				if owner == "new" {
					owner = fmt.Sprint("new-", capped) // new for each
				}
				_, k, _ := keyrules.Mint("kg", store.Key{Owner: owner, CreatedAt: now})
				if err := s.CreateCapped(ctx, k, 1_000_000, now); err != nil { // the first use counts the owner's keys
					b.Fatal(err)
				}
				reads := s.cappedReads.Load()
				b.ResetTimer()
				for b.Loop() {
					now = now.Add(time.Second)
					_, repl, _ := keyrules.Mint("kg", keyrules.Replacement(k, now))
					var err error
					if capped {
						_, err = s.RotateCapped(ctx, k.ID, repl, now.Add(720*time.Hour), 1_000_000)
					} else {
						_, err = s.Rotate(ctx, k.ID, repl, now.Add(720*time.Hour))
					}
					if err != nil {
						b.Fatal(err)
					}
					k = repl
				}
				b.ReportMetric(float64(s.cappedReads.Load()-reads)/float64(b.N), "count-docs/op")
			})
		}
	}
}
