package firestorestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
)

// seedRevoked writes n keys of owner, revoked an hour before t0, in bulk, as
// another program (or years of use) would have left them.
func seedRevoked(t testing.TB, s *Store, owner string, n int) {
	t.Helper()
	ctx := context.Background()
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bw := client.BulkWriter(ctx)
	for i := range n {
		_, k, err := keyrules.Mint("kg", store.Key{Owner: owner, Name: fmt.Sprint("old ", i), CreatedAt: t0.Add(-48 * time.Hour),
			RevokedAt: t0.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bw.Create(client.Collection(s.collection).Doc(k.ID), encodeKey(k)); err != nil {
			t.Fatal(err)
		}
	}
	bw.End()
}

// cappedCreateReads creates a key for owner under cap at now, and returns
// the documents it read.
func cappedCreateReads(t *testing.T, s *Store, owner string, cap int, now time.Time) int64 {
	t.Helper()
	_, k, err := keyrules.Mint("kg", store.Key{Owner: owner, CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	before := s.cappedReads.Load()
	if err := s.CreateCapped(context.Background(), k, cap, now); err != nil {
		t.Fatalf("CreateCapped: %v", err)
	}
	return s.cappedReads.Load() - before
}

// TestCappedCreateReadsFewDocuments: an owner with 10,000 revoked keys is
// counted once, on its first capped create (which reads them all); from
// then on a capped create reads at most 3 documents, as for a new owner.
// Keys revoked after the count are read once, by the next capped create.
func TestCappedCreateReadsFewDocuments(t *testing.T) {
	s := newTestStore(t)
	seedRevoked(t, s, "acme", 10_000)
	if n := cappedCreateReads(t, s, "acme", 100, t0); n != 10_001 {
		t.Errorf("the first capped create read %d documents, want the count and the 10,000 keys", n)
	}
	for i := range 3 {
		if n := cappedCreateReads(t, s, "acme", 100, t0.Add(time.Duration(i+1)*time.Hour)); n > 3 {
			t.Errorf("capped create %d of an owner with 10,000 revoked keys read %d documents, want at most 3", i+2, n)
		}
	}
	if n := cappedCreateReads(t, s, "new", 5, t0); n > 3 {
		t.Errorf("a new owner's capped create read %d documents, want at most 3", n)
	}
	// 20 keys revoked through the store: the next capped create reads them,
	// once; the one after, not again.
	ctx := context.Background()
	for range 20 {
		_, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
		if err := s.CreateCapped(ctx, k, 100, t0.Add(4*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Revoke(ctx, k.ID, t0.Add(5*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if n := cappedCreateReads(t, s, "acme", 100, t0.Add(6*time.Hour)); n != 21 {
		t.Errorf("the capped create after 20 revocations read %d documents, want the count and the 20", n)
	}
	if n := cappedCreateReads(t, s, "acme", 100, t0.Add(7*time.Hour)); n > 3 {
		t.Errorf("the capped create after that read %d documents, want at most 3", n)
	}
}

// BenchmarkCappedCreate: a capped create of an owner with 10,000 revoked
// keys (counted) takes as long as one of a new owner of the same
// collection. (The emulator has no indexes: each query scans the whole
// collection, so both pay for its 10,000 documents; Firestore's indexes do
// not.)
//
//	FIRESTORE_EMULATOR_HOST=127.0.0.1:8091 go test -run NONE -bench '^BenchmarkCappedCreate$' -benchtime 50x ./apikey/firestorestore
func BenchmarkCappedCreate(b *testing.B) {
	_, project := emulator.Project(b)
	s := New(Config{Project: project})
	b.Cleanup(func() { s.Close() })
	seedRevoked(b, s, "old", 10_000)
	for _, owner := range []string{"new", "old"} {
		b.Run("owner="+owner, func(b *testing.B) {
			ctx := context.Background()
			now := t0
			create := func() {
				_, k, err := keyrules.Mint("kg", store.Key{Owner: owner, CreatedAt: now})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.CreateCapped(ctx, k, 1_000_000, now); err != nil {
					b.Fatal(err)
				}
				now = now.Add(time.Second)
			}
			create() // the first use counts the owner's keys
			reads := s.cappedReads.Load()
			b.ResetTimer()
			for b.Loop() {
				create()
			}
			b.ReportMetric(float64(s.cappedReads.Load()-reads)/float64(b.N), "docs/op")
		})
	}
}

// TestExistingOwnerCountedOnFirstUse: an owner whose keys predate the count
// (an old guard document holding only updated_at) is counted by its first
// capped create, which then keeps the cap.
func TestExistingOwnerCountedOnFirstUse(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
		if i >= 3 {
			k.RevokedAt = t0
		}
		if _, err := client.Collection(s.collection).Doc(k.ID).Create(ctx, encodeKey(k)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.countDoc(client, "acme").Set(ctx, map[string]any{"updated_at": t0}); err != nil {
		t.Fatal(err)
	}
	_, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
	if err := s.CreateCapped(ctx, k, 3, t0); !errors.Is(err, store.ErrKeyLimitReached) {
		t.Fatalf("CreateCapped at 3 active keys of an owner not yet counted = %v, want ErrKeyLimitReached", err)
	}
	// The refusal kept the count, so that the next create does not count
	// every key again.
	if c, err := s.readCount(ctx, client, "acme", t0); err != nil || c.missing != nil || c.active-int64(len(c.ended)) != 3 {
		t.Errorf("after the refusal the count = %d active, %d ended, counted %v, %v; want 3, counted", c.active, len(c.ended), c.missing == nil, err)
	}
	if err := s.CreateCapped(ctx, k, 4, t0); err != nil {
		t.Fatalf("CreateCapped under the cap = %v", err)
	}
	if c, err := s.readCount(ctx, client, "acme", t0); err != nil || !c.snap.Exists() || c.missing != nil || c.active-int64(len(c.ended)) != 4 {
		t.Errorf("count = %d active, %d of them ended, %v; want 4 active, counted", c.active, len(c.ended), err)
	}
}

// TestKeyCountMatchesKeys checks the count against its reference, the keys
// themselves: random creates (capped, plain, expiring, already ended),
// revocations, rotations and deletions of one owner through two stores, at
// times that go forward; after each, the active keys the count gives equal
// those of Status over every key, as memstore counts them.
func TestKeyCountMatchesKeys(t *testing.T) {
	_, project := emulator.Project(t)
	a, b := New(Config{Project: project}), New(Config{Project: project})
	t.Cleanup(func() { a.Close(); b.Close() })
	ref := memstore.New()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(19, 19))
	now := t0
	var ids []string
	client, err := a.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for step := range 120 {
		s := []*Store{a, b}[rng.IntN(2)]
		now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
		var op string
		var err, refErr error
		newKey := func() store.Key {
			tmpl := store.Key{Owner: "acme", CreatedAt: now}
			switch rng.IntN(4) {
			case 0:
				tmpl.ExpiresAt = now.Add(time.Duration(rng.IntN(300)-30) * time.Second) // some already expired
			case 1:
				tmpl.RevokedAt = now.Add(-time.Duration(rng.IntN(120)) * time.Second)
			}
			_, k, _ := keyrules.Mint("kg", tmpl)
			return k
		}
		switch r := rng.IntN(10); {
		case r < 3 || len(ids) == 0:
			op = "capped create"
			k := newKey()
			err, refErr = s.CreateCapped(ctx, k, 1000, now), ref.CreateCapped(ctx, k, 1000, now)
			ids = append(ids, k.ID)
		case r < 4:
			op = "create"
			k := newKey()
			err, refErr = s.Create(ctx, k), ref.Create(ctx, k)
			ids = append(ids, k.ID)
		case r < 7:
			op = "revoke"
			id := ids[rng.IntN(len(ids))]
			_, err = s.Revoke(ctx, id, now)
			_, refErr = ref.Revoke(ctx, id, now)
		case r < 9:
			op = "rotate"
			id := ids[rng.IntN(len(ids))]
			_, repl, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: now})
			grace := now.Add(time.Duration(rng.IntN(200)) * time.Second)
			if r == 8 {
				op = "capped rotate"
				limit := rng.IntN(12)
				_, err = s.RotateCapped(ctx, id, repl, grace, limit)
				_, refErr = ref.RotateCapped(ctx, id, repl, grace, limit)
			} else {
				_, err = s.Rotate(ctx, id, repl, grace)
				_, refErr = ref.Rotate(ctx, id, repl, grace)
			}
			if refErr == nil {
				ids = append(ids, repl.ID)
			}
		default:
			op = "delete"
			i := rng.IntN(len(ids))
			err, refErr = s.Delete(ctx, ids[i]), ref.Delete(ctx, ids[i])
			ids = append(ids[:i], ids[i+1:]...)
		}
		if (err == nil) != (refErr == nil) || !errors.Is(err, refErr) {
			t.Fatalf("step %d, %s: %v, memstore %v", step, op, err, refErr)
		}
		c, err := a.readCount(ctx, client, "acme", now)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		page, err := ref.ListByOwner(ctx, "acme", nil, store.MaxPageLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			if k.Status(now) == store.StatusActive {
				want++
			}
		}
		if got := c.active - int64(len(c.ended)); got != int64(want) {
			t.Fatalf("step %d, after %s: the count gives %d active keys (%d, %d ended), want %d", step, op, got, c.active, len(c.ended), want)
		}
	}
}

// TestFirstCountOfManyEnds: an owner not counted yet whose keys need more
// end documents deleted and created than one commit takes (450 keys
// revoked through the store before its first capped create, 450 active
// keys with an expiry written without end documents) is counted over
// several commits, and right.
func TestFirstCountOfManyEnds(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 450
	bw := client.BulkWriter(ctx)
	for i := range 2 * n {
		tmpl := store.Key{Owner: "acme", Name: fmt.Sprint("key ", i), CreatedAt: t0.Add(-time.Hour)}
		if i < n {
			tmpl.RevokedAt = t0.Add(-time.Minute) // as Revoke leaves it: with an end document
		} else {
			tmpl.ExpiresAt = t0.Add(time.Hour) // written by other means: without one
		}
		_, k, err := keyrules.Mint("kg", tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bw.Create(client.Collection(s.collection).Doc(k.ID), encodeKey(k)); err != nil {
			t.Fatal(err)
		}
		if i < n {
			if _, err := bw.Create(s.endDoc(client, "acme", k.ID), map[string]any{"end": k.RevokedAt}); err != nil {
				t.Fatal(err)
			}
		}
	}
	bw.End()
	_, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
	if err := s.CreateCapped(ctx, k, n, t0); !errors.Is(err, store.ErrKeyLimitReached) {
		t.Fatalf("CreateCapped at %d active keys, cap %d = %v, want ErrKeyLimitReached", n, n, err)
	}
	if err := s.CreateCapped(ctx, k, n+1, t0); err != nil {
		t.Fatalf("CreateCapped under the cap = %v", err)
	}
	c, err := s.readCount(ctx, client, "acme", t0.Add(2*time.Hour))
	if err != nil || c.missing != nil || c.active-int64(len(c.ended)) != 1 {
		t.Errorf("two hours on, the count = %d active, %d ended, counted %v, %v; want 1 active (the new key), counted", c.active, len(c.ended), c.missing == nil, err)
	}
}

// TestKeyCountUnderConcurrentWrites: revocations, deletions, rotations and
// capped creates of one owner at once, through two stores: afterwards the
// count gives the active keys there are.
func TestKeyCountUnderConcurrentWrites(t *testing.T) {
	_, project := emulator.Project(t)
	a, b := New(Config{Project: project}), New(Config{Project: project})
	t.Cleanup(func() { a.Close(); b.Close() })
	ctx := context.Background()
	var ids []string
	for range 30 {
		_, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
		if err := a.CreateCapped(ctx, k, 1000, t0); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		s := []*Store{a, b}[i%2]
		wg.Go(func() {
			var err error
			switch i % 5 {
			case 0, 1:
				_, err = s.Revoke(ctx, id, t0.Add(time.Minute))
			case 2:
				err = s.Delete(ctx, id)
			case 3:
				_, repl, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0.Add(time.Minute)})
				_, err = s.Rotate(ctx, id, repl, t0.Add(90*time.Second))
			case 4:
				_, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0.Add(time.Minute)})
				err = s.CreateCapped(ctx, k, 1000, t0.Add(time.Minute))
			}
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	now := t0.Add(2 * time.Minute)
	client, err := a.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.readCount(ctx, client, "acme", now)
	if err != nil {
		t.Fatal(err)
	}
	page, err := a.ListByOwner(ctx, "acme", nil, store.MaxPageLimit)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, k := range page.Keys {
		if k.Status(now) == store.StatusActive {
			want++
		}
	}
	if got := c.active - int64(len(c.ended)); got != int64(want) || want != 18 {
		t.Errorf("the count gives %d active keys (%d, %d ended); there are %d, want 18", got, c.active, len(c.ended), want)
	}
}
