package firestorestore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/apikey/storetest"
)

// TestChangeSeqs: writes from two processes at once (two stores on one
// project) get the seqs 1 to n, without a gap or a repeat, in documents
// named after them, and the counter ends at n: the property that makes the
// feed exact (see changes.go), which the contract can only see through
// Changes.
func TestChangeSeqs(t *testing.T) {
	s := newTestStore(t)
	other := New(Config{Project: s.project})
	t.Cleanup(func() { other.Close() })
	ctx := context.Background()
	const n = 30
	ids := make([]string, n)
	for i := range ids {
		_, k := storetest.MintKey(t, s, "acme")
		ids[i] = k.ID
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		w := s
		if i%2 == 1 {
			w = other
		}
		wg.Go(func() {
			if _, err := w.Revoke(ctx, id, t0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := s.changes(client).Where("seq", ">", 0).OrderBy("seq", firestore.Asc).Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, snap := range snaps {
		var d changeDoc
		if err := snap.DataTo(&d); err != nil {
			t.Fatal(err)
		}
		if d.Seq != int64(i+1) || snap.Ref.ID != seqID(d.Seq) {
			t.Errorf("change %d: seq %d in document %s, want %d in %s", i, d.Seq, snap.Ref.ID, i+1, seqID(int64(i+1)))
		}
		got = append(got, d.ID)
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Errorf("changes of %v, want one of each of %v", got, ids)
	}
	if _, c, err := s.Changes(ctx, "", 1); err != nil || c != "30" {
		t.Errorf("the present = %q, %v; want 30", c, err)
	}
}

// TestChangeDocument: a change's document holds its kind, ID, seq, the
// server's time and an expiry for the TTL policy, ChangeRetention later.
func TestChangeDocument(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	if err := s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 3}); err != nil {
		t.Fatal(err)
	}
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.changes(client).Doc(seqID(1)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Kind      string    `firestore:"kind"`
		ID        string    `firestore:"id"`
		Seq       int64     `firestore:"seq"`
		At        time.Time `firestore:"at"`
		ExpiresAt time.Time `firestore:"expires_at"`
	}
	if err := snap.DataTo(&d); err != nil {
		t.Fatal(err)
	}
	if d.Kind != "owner" || d.ID != "acme" || d.Seq != 1 || time.Since(d.At).Abs() > time.Minute ||
		d.ExpiresAt.Sub(d.At).Round(time.Minute) != store.ChangeRetention {
		t.Errorf("change document = %+v, want owner acme, seq 1, now, expiring %v later", d, store.ChangeRetention)
	}
	if got := len(snap.Data()); got != 5 {
		t.Errorf("change document has %d fields, want 5: %v", got, snap.Data())
	}
}

// TestChangesExpired: changes that the TTL policy deleted before a reader
// read them leave a gap after its cursor, which Changes reports as
// ErrChangesExpired rather than skipping over.
func TestChangesExpired(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	for _, owner := range []string{"a", "b", "c"} {
		if err := s.SetPlan(ctx, store.Plan{Owner: owner, MaxKeys: 3}); err != nil {
			t.Fatal(err)
		}
	}
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.changes(client).Doc(seqID(2)).Delete(ctx); err != nil { // as the TTL policy would
		t.Fatal(err)
	}
	for _, c := range []store.ChangeCursor{"0", "1"} {
		if _, _, err := s.Changes(ctx, c, 10); !errors.Is(err, store.ErrChangesExpired) {
			t.Errorf("Changes(%q) over the gap = %v, want ErrChangesExpired", c, err)
		}
	}
	if got, _, err := s.Changes(ctx, "2", 10); err != nil || len(got) != 1 || got[0].ID != "c" {
		t.Errorf("Changes after the gap = %v, %v; want c's", got, err)
	}
}
