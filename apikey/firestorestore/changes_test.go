package firestorestore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// TestChangesSameCommitTime: changes committed at the same time (which the
// contract cannot arrange through the store's writes) are read each once,
// in document ID order, whatever the page size: the cursor holds the
// document ID as well as the time, so a page that ends between two of them
// loses neither.
func TestChangesSameCommitTime(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	client, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, cursor, err := s.Changes(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	// Written as logChange writes them, with one time set by hand, later
	// than the present (so after the cursor), for all.
	at := time.Now().Add(time.Minute).UTC().Truncate(time.Microsecond)
	ids := []string{"c", "a", "e", "b", "d"}
	for _, id := range ids {
		if _, err := s.changes(client).Doc(id).Create(ctx, map[string]any{
			"kind": string(store.ChangeKey), "id": "key-" + id, "at": at, "expires_at": at.Add(changeDocLife),
		}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"key-a", "key-b", "key-c", "key-d", "key-e"}
	for _, limit := range []int{1, 2, 3, 5, 10} {
		var got []string
		c := cursor
		for range 10 {
			page, next, err := s.Changes(ctx, c, limit)
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range page {
				if !ch.At.Equal(at) || ch.Kind != store.ChangeKey {
					t.Errorf("change %+v, want a key change at %v", ch, at)
				}
				got = append(got, ch.ID)
			}
			c = next
			if len(page) < limit {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d = %v, want %v", limit, got, want)
		}
	}
	// The present is now the last of them.
	if _, c, err := s.Changes(ctx, "", 1); err != nil || c != cursorOf(at, "e") {
		t.Errorf("the present = %q, %v; want %q", c, err, cursorOf(at, "e"))
	}
}

// TestChangeDocument: a change's document holds its kind, ID, commit time
// and an expiry for the TTL policy, ChangeRetention later.
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
		t.Fatalf("change documents = %d, %v; want 1", len(snaps), err)
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
	if d.Kind != "owner" || d.ID != "acme" || time.Since(d.At).Abs() > time.Minute || d.ExpiresAt.Sub(d.At).Round(time.Minute) != store.ChangeRetention {
		t.Errorf("change document = %+v, want owner acme, now, expiring %v later", d, store.ChangeRetention)
	}
	if got := len(snaps[0].Data()); got != 4 {
		t.Errorf("change document has %d fields, want 4: %v", got, snaps[0].Data())
	}
}
