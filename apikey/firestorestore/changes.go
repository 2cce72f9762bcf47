package firestorestore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/store"
)

// The change feed: one document per change in {KEYS_COLLECTION}_changes,
// {kind, id, at, expires_at}, with an automatic ID, created in the same
// transaction as the write it records. at is the commit time
// (firestore.ServerTimestamp); expires_at, ChangeRetention later by this
// process's clock, is for a TTL policy to delete it.
//
// Why reading "after the cursor, in (at, document ID) order" misses nothing:
// Firestore is strongly consistent, so a query that reads at time R sees
// every commit whose commit time is at most R, and none after. The cursor
// is the (at, document ID) of the last change read, so at <= R; a change
// the query did not see was committed after R, at a time greater than the
// cursor's, and the next query, which starts just after the cursor, sees
// it. Two changes committed at the same time are ordered by document ID and
// were both visible to any query that saw one of them, so a page that ends
// between them loses neither.
const (
	changesSuffix = "_changes"
	// changeDocLife is how long a change document is kept at least: the
	// TTL policy deletes it some time after its expires_at.
	changeDocLife = store.ChangeRetention
)

// changeDoc is a change's document, as read.
type changeDoc struct {
	Kind string    `firestore:"kind"`
	ID   string    `firestore:"id"`
	At   time.Time `firestore:"at"`
}

// changes returns the collection of changes.
func (s *Store) changes(client *firestore.Client) *firestore.CollectionRef {
	return client.Collection(s.collection + changesSuffix)
}

// logChange creates the document of a change in tx.
func (s *Store) logChange(tx *firestore.Transaction, client *firestore.Client, kind store.ChangeKind, id string) error {
	return tx.Create(s.changes(client).NewDoc(), map[string]any{
		"kind": string(kind), "id": id, "at": firestore.ServerTimestamp,
		"expires_at": time.Now().Add(changeDocLife),
	})
}

// Changes implements store.ChangeStore with one query, which reads at most
// limit documents (one when there are none: Firestore bills an empty query
// as one read). The zero cursor's query reads the latest change.
func (s *Store) Changes(ctx context.Context, after store.ChangeCursor, limit int) ([]store.Change, store.ChangeCursor, error) {
	if limit < 1 {
		return nil, after, fmt.Errorf("firestore: changes: limit %d, want at least 1", limit)
	}
	at, id, err := parseCursor(after)
	if err != nil {
		return nil, after, err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return nil, after, err
	}
	col := s.changes(client)
	if after == "" {
		snaps, err := col.OrderBy("at", firestore.Desc).OrderBy(firestore.DocumentID, firestore.Desc).
			Limit(1).Documents(ctx).GetAll()
		if err != nil {
			return nil, after, storeError("read changes", err)
		}
		if len(snaps) == 0 {
			return nil, beginning, nil
		}
		c, err := decodeChange(snaps[0])
		if err != nil {
			return nil, after, err
		}
		return nil, cursorOf(c.At, snaps[0].Ref.ID), nil
	}
	q := col.OrderBy("at", firestore.Asc).OrderBy(firestore.DocumentID, firestore.Asc)
	if after != beginning {
		q = q.StartAfter(at, id)
	}
	snaps, err := q.Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, after, storeError("read changes", err)
	}
	out := make([]store.Change, 0, len(snaps))
	next := after
	for _, snap := range snaps {
		c, err := decodeChange(snap)
		if err != nil {
			return nil, after, err
		}
		out = append(out, c)
		next = cursorOf(c.At, snap.Ref.ID)
	}
	return out, next, nil
}

func decodeChange(snap *firestore.DocumentSnapshot) (store.Change, error) {
	var d changeDoc
	if err := snap.DataTo(&d); err != nil {
		return store.Change{}, fmt.Errorf("firestore: change document %s: %w", snap.Ref.ID, err)
	}
	return store.Change{Kind: store.ChangeKind(d.Kind), ID: d.ID, At: d.At.UTC()}, nil
}

// A cursor is the commit time of the last change read, in Unix
// microseconds (Firestore's precision), a slash, and its document ID.
// beginning, before every change, is for a feed that has none yet.
const beginning store.ChangeCursor = "0/"

func cursorOf(at time.Time, id string) store.ChangeCursor {
	return store.ChangeCursor(strconv.FormatInt(at.UnixMicro(), 10) + "/" + id)
}

// parseCursor reads a cursor; the zero cursor gives the zero time, and
// beginning the Unix epoch and no ID.
func parseCursor(c store.ChangeCursor) (at time.Time, id string, err error) {
	if c == "" {
		return time.Time{}, "", nil
	}
	micros, id, ok := strings.Cut(string(c), "/")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || n < 0 || strings.Contains(id, "/") || (n == 0) != (id == "") {
		return time.Time{}, "", fmt.Errorf("firestore: changes: %q is not a cursor of this store", c)
	}
	return time.UnixMicro(n).UTC(), id, nil
}
