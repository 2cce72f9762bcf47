package firestorestore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The change feed: one document per change in {KEYS_COLLECTION}_changes,
// {kind, id, seq, at, expires_at}, whose ID is seq padded to 20 digits,
// created in the same transaction as the write it records, with the
// collection's counter document, {KEYS_COLLECTION}_changes/counter {last},
// which the transaction reads and sets to seq. at is the server's time
// (informational); expires_at, ChangeRetention later by this process's
// clock, is for a TTL policy to delete the document. A cursor is the seq
// of the last change read, in decimal.
//
// Why reading "seq after the cursor" misses nothing: every change's
// transaction reads and writes the counter, so Firestore (serializable)
// commits them one after another, in seq order, and seqs have no gaps. A
// change is visible only once those before it are, and Firestore is
// strongly consistent: so a query sees the changes up to some seq and no
// later one, and the next query, after the last seq seen, sees the rest. A
// server timestamp would not do as the cursor: it is when the server
// processed the request, to the millisecond, and a commit can become
// visible after one with a later timestamp.
const (
	changesSuffix = "_changes"
	// counterDoc is the ID of the counter document. It has no seq, so the
	// feed's queries (on seq) never return it.
	counterDoc = "counter"
	// changeDocLife is how long a change document is kept at least: the
	// TTL policy deletes it some time after its expires_at.
	changeDocLife = store.ChangeRetention
	// changeAttempts is how often a write that records a change runs its
	// transaction when others contend for the counter: they are rare, but
	// a bulk revocation from several processes is not.
	changeAttempts = 30
)

// changeDoc is a change's document, as read.
type changeDoc struct {
	Kind string    `firestore:"kind"`
	ID   string    `firestore:"id"`
	Seq  int64     `firestore:"seq"`
	At   time.Time `firestore:"at"`
}

// changes returns the collection of changes.
func (s *Store) changes(client *firestore.Client) *firestore.CollectionRef {
	return client.Collection(s.collection + changesSuffix)
}

// changeTx runs f in a transaction that records one change, unless f says
// it changed nothing (record false). f reads what it needs, calls reserve
// (a read: the counter) before its first write, and returns the change to
// record. This process's changes take turns (changeMu), so that they do not
// contend for the counter; other processes' are retried.
func (s *Store) changeTx(ctx context.Context, client *firestore.Client, f func(ctx context.Context, tx *firestore.Transaction, reserve func() error) (kind store.ChangeKind, id string, record bool, err error)) error {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return notApplied(err)
	}
	col := s.changes(client)
	counter := col.Doc(counterDoc)
	return runTransaction(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
		var last int64
		reserved := false
		reserve := func() error {
			snap, err := tx.Get(counter)
			if err != nil && status.Code(err) != codes.NotFound {
				return err
			}
			if snap != nil && snap.Exists() {
				v, err := snap.DataAt("last")
				if err != nil {
					return err
				}
				last, _ = v.(int64)
			}
			reserved = true
			return nil
		}
		kind, id, record, err := f(ctx, tx, reserve)
		if err != nil || !record {
			return err
		}
		if !reserved {
			return fmt.Errorf("firestore: a change recorded without reading the counter")
		}
		seq := last + 1
		if err := tx.Create(col.Doc(seqID(seq)), map[string]any{
			"kind": string(kind), "id": id, "seq": seq, "at": firestore.ServerTimestamp,
			"expires_at": time.Now().Add(changeDocLife),
		}); err != nil {
			return err
		}
		return tx.Set(counter, map[string]any{"last": seq})
	}, firestore.MaxAttempts(changeAttempts))
}

// seqID is the document ID of the change seq: padded, so that IDs sort as
// seqs do.
func seqID(seq int64) string { return fmt.Sprintf("%020d", seq) }

// Changes implements store.ChangeStore with one query, which reads at most
// limit documents (one when there are none: Firestore bills an empty query
// as one read). The zero cursor reads the counter. A gap between the cursor
// and the first change read means the TTL policy deleted changes not yet
// read: ErrChangesExpired.
func (s *Store) Changes(ctx context.Context, after store.ChangeCursor, limit int) ([]store.Change, store.ChangeCursor, error) {
	if limit < 1 {
		return nil, after, fmt.Errorf("firestore: changes: limit %d, want at least 1", limit)
	}
	var from int64
	if after != "" {
		n, err := strconv.ParseInt(string(after), 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != string(after) {
			return nil, after, fmt.Errorf("firestore: changes: %q is not a cursor of this store", after)
		}
		from = n
	}
	client, err := s.Client(ctx)
	if err != nil {
		return nil, after, err
	}
	col := s.changes(client)
	if after == "" {
		snap, err := col.Doc(counterDoc).Get(ctx)
		if status.Code(err) == codes.NotFound {
			return nil, cursorAt(0), nil
		}
		if err != nil {
			return nil, after, storeError("read changes", err)
		}
		v, err := snap.DataAt("last")
		if err != nil {
			return nil, after, fmt.Errorf("firestore: change counter: %w", err)
		}
		last, _ := v.(int64)
		return nil, cursorAt(last), nil
	}
	snaps, err := col.Where("seq", ">", from).OrderBy("seq", firestore.Asc).Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, after, storeError("read changes", err)
	}
	out := make([]store.Change, 0, len(snaps))
	next := from
	for _, snap := range snaps {
		var d changeDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, after, fmt.Errorf("firestore: change document %s: %w", snap.Ref.ID, err)
		}
		if d.Seq != next+1 {
			return nil, after, store.ErrChangesExpired
		}
		out = append(out, store.Change{Kind: store.ChangeKind(d.Kind), ID: d.ID, At: d.At.UTC()})
		next = d.Seq
	}
	return out, cursorAt(next), nil
}

// cursorAt is the cursor after the change seq.
func cursorAt(seq int64) store.ChangeCursor { return store.ChangeCursor(strconv.FormatInt(seq, 10)) }
