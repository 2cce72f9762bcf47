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

// TestChangesTouchNoSharedDocument: 30 revocations from two processes at
// once (two stores on one project) each write one change document under a
// random ID, and nothing else in the feed's collection: no document that
// every change goes through, no IDs in increasing order. A reader from
// before sees each once.
func TestChangesTouchNoSharedDocument(t *testing.T) {
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
	_, before, err := s.Changes(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
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
	snaps, err := s.changes(client).OrderBy("at", firestore.Asc).Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.changes(client).Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n || len(snaps) != n {
		t.Errorf("the feed's collection holds %d documents (%d with at), want the %d changes alone", len(all), len(snaps), n)
	}
	var docIDs, got []string
	for _, snap := range snaps {
		var d changeDoc
		if err := snap.DataTo(&d); err != nil {
			t.Fatal(err)
		}
		docIDs = append(docIDs, snap.Ref.ID)
		got = append(got, d.ID)
	}
	if slices.IsSorted(docIDs) {
		t.Errorf("change document IDs increase with their commits: %v", docIDs)
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Errorf("changes of %v, want one of each of %v", got, ids)
	}
	var read []string
	for c := before; ; {
		page, next, err := s.Changes(ctx, c, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range page {
			read = append(read, ch.ID)
		}
		if c = next; len(page) < 7 {
			break
		}
	}
	slices.Sort(read)
	if !slices.Equal(read, ids) {
		t.Errorf("a reader from before read %v, want each of %v once", read, ids)
	}
}

// TestChangeDocument: a change's document holds its kind, ID, the
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
	snaps, err := s.changes(client).Documents(ctx).GetAll()
	if err != nil || len(snaps) != 1 {
		t.Fatalf("%d change documents, %v; want 1", len(snaps), err)
	}
	var d struct {
		Kind      string    `firestore:"kind"`
		ID        string    `firestore:"id"`
		At        time.Time `firestore:"at"`
		ExpiresAt time.Time `firestore:"expires_at"`
	}
	if err := snaps[0].DataTo(&d); err != nil {
		t.Fatal(err)
	}
	if d.Kind != "owner" || d.ID != "acme" || time.Since(d.At).Abs() > time.Minute ||
		d.ExpiresAt.Sub(d.At).Round(time.Minute) != store.ChangeRetention {
		t.Errorf("change document = %+v, want owner acme, now, expiring %v later", d, store.ChangeRetention)
	}
	if got := len(snaps[0].Data()); got != 4 {
		t.Errorf("change document has %d fields, want 4: %v", got, snaps[0].Data())
	}
}

// TestChangeVisibleLate: a change whose commit becomes visible after the
// reader read a later one (as the emulator shows under load), by less than
// visibleWithin, is still read, once.
func TestChangeVisibleLate(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	if err := s.SetPlan(ctx, store.Plan{Owner: "early", MaxKeys: 3}); err != nil {
		t.Fatal(err)
	}
	_, c, err := s.Changes(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetPlan(ctx, store.Plan{Owner: "a", MaxKeys: 3}); err != nil {
		t.Fatal(err)
	}
	got, c, err := s.Changes(ctx, c, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("Changes = %v, %v; want a's", got, err)
	}
	// A change timed before a's, visible only now.
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := decodeCursor(c)
	if err != nil {
		t.Fatal(err)
	}
	late := cur.from.Add(time.Millisecond) // within the window, and before a's unless the machine stalled for 250 ms
	if !late.Before(got[0].At) {
		t.Logf("a's change at %v is not after the window's start %v: the late one is timed at the start", got[0].At, cur.from)
		late = cur.from
	}
	if _, err := s.changes(client).NewDoc().Create(ctx, map[string]any{
		"kind": "owner", "id": "late", "at": late, "expires_at": time.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // once, then not again
		page, next, err := s.Changes(ctx, c, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(page) == 1 && page[0].ID == "late"; (got != nil) != want {
			t.Errorf("Changes after a = %v; want the late change once", page)
		}
		c, got = next, nil
	}
}

// TestFeedBrokenByHand: a feed emptied or pruned by hand, or a cursor ahead
// of the feed, is ErrChangesExpired on the next read, never a silent
// nothing; writes then recreate what the feed needs (a change document,
// nothing else), and a reader that starts over sees them.
func TestFeedBrokenByHand(t *testing.T) {
	ctx := context.Background()
	deleteAll := func(t *testing.T, s *Store) {
		client, err := s.Client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		snaps, err := s.changes(client).Documents(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, snap := range snaps {
			if _, err := snap.Ref.Delete(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	setup := func(t *testing.T) (*Store, store.ChangeCursor) {
		s := newTestStore(t)
		for _, owner := range []string{"a", "b"} {
			if err := s.SetPlan(ctx, store.Plan{Owner: owner, MaxKeys: 3}); err != nil {
				t.Fatal(err)
			}
		}
		_, c, err := s.Changes(ctx, "", 1)
		if err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	t.Run("emptied", func(t *testing.T) {
		s, c := setup(t)
		deleteAll(t, s)
		if _, _, err := s.Changes(ctx, c, 10); !errors.Is(err, store.ErrChangesExpired) {
			t.Errorf("Changes after the feed was emptied = %v, want ErrChangesExpired", err)
		}
		// A write after it is recorded, and read by a reader that starts over.
		_, c, err := s.Changes(ctx, "", 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetPlan(ctx, store.Plan{Owner: "c", MaxKeys: 3}); err != nil {
			t.Fatal(err)
		}
		if got, _, err := s.Changes(ctx, c, 10); err != nil || len(got) != 1 || got[0].ID != "c" {
			t.Errorf("Changes after starting over = %v, %v; want c's", got, err)
		}
	})
	t.Run("emptied, then written", func(t *testing.T) {
		s, c := setup(t)
		deleteAll(t, s)
		if err := s.SetPlan(ctx, store.Plan{Owner: "c", MaxKeys: 3}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Changes(ctx, c, 10); !errors.Is(err, store.ErrChangesExpired) {
			t.Errorf("Changes after the feed was emptied and written = %v, want ErrChangesExpired", err)
		}
	})
	t.Run("cursor ahead", func(t *testing.T) {
		s, c := setup(t)
		cur, err := decodeCursor(c)
		if err != nil {
			t.Fatal(err)
		}
		cur.from = cur.from.Add(time.Hour)
		if _, _, err := s.Changes(ctx, cur.encode(), 10); !errors.Is(err, store.ErrChangesExpired) {
			t.Errorf("Changes from a cursor an hour ahead = %v, want ErrChangesExpired", err)
		}
	})
	t.Run("another feed's cursor", func(t *testing.T) {
		_, c := setup(t)
		other, _ := setup(t)
		if _, _, err := other.Changes(ctx, c, 10); !errors.Is(err, store.ErrChangesExpired) {
			t.Errorf("Changes from another feed's cursor = %v, want ErrChangesExpired", err)
		}
	})
}
