package firestorestore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/store"
)

// The change feed: one document per change in {KEYS_COLLECTION}_changes,
// {kind, id, at, expires_at}, under an ID Firestore picks at random,
// created in the same transaction as the write it records and touching no
// other document: changes do not contend with each other, and no document
// or index range is written by all of them but the index of at. at is the
// commit's server timestamp; expires_at, ChangeRetention later by this
// process's clock, is for a TTL policy to delete the document.
//
// A reader asks for the changes whose at is at or after a lower bound,
// ordered by at, and drops those it has seen. Why that misses nothing: a
// query at read time R sees every change committed before R, except one
// whose commit becomes visible after a later one's; such a change's at is
// still within visibleWithin of R. So after a read at R, the next read
// starts at R - visibleWithin, and the cursor carries the IDs of the
// changes read whose at is within that window, to drop them when they come
// again. The cursor also carries its anchor, the latest change read: it
// must come back in every read (the lower bound is never after it), and
// if it does not, the feed was emptied or pruned by hand, or the cursor is
// not this feed's: the read fails with ErrChangesExpired, and the reader
// starts over. The anchor also gives every read a document, and so a read
// time.
const (
	changesSuffix = "_changes"
	// changeDocLife is how long a change document is kept at least: the
	// TTL policy deletes it some time after its expires_at.
	changeDocLife = store.ChangeRetention
	// visibleWithin bounds how far, in at, a commit can become visible
	// behind one already read: on production Firestore a commit's server
	// timestamp is its commit time and commits become visible in that
	// order (about 0); the emulator was measured at 4 ms with 16 writers
	// on two clients, but on a machine loaded tenfold (load average 10 on
	// two cores) it made one of 20 concurrent commits visible more than
	// 250 ms late. Two seconds cover both with room to spare, at the cost of
	// reading again the changes of the last two seconds.
	visibleWithin = 2 * time.Second
	// anchorLife is the age past which a reader stops expecting its anchor:
	// well before the TTL policy may delete it.
	anchorLife = store.ChangeRetention / 2
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

// recordChange writes, in tx, the document of a change of kind to id.
func (s *Store) recordChange(client *firestore.Client, tx *firestore.Transaction, kind store.ChangeKind, id string) error {
	return tx.Create(s.changes(client).NewDoc(), map[string]any{
		"kind": string(kind), "id": id, "at": firestore.ServerTimestamp,
		"expires_at": time.Now().Add(changeDocLife),
	})
}

// feedCursor is a store.ChangeCursor, decoded: "v2:from:anchorAt:anchor:seen",
// times in microseconds since the epoch, seen a comma-separated list.
type feedCursor struct {
	from     time.Time // reads start here
	anchorAt time.Time // when the anchor was committed
	anchor   string    // the latest change read; "" if none
	seen     []string  // changes read whose at is at or after from
}

const cursorVersion = "v2"

func (c feedCursor) encode() store.ChangeCursor {
	return store.ChangeCursor(strings.Join([]string{cursorVersion,
		strconv.FormatInt(c.from.UnixMicro(), 10), strconv.FormatInt(c.anchorAt.UnixMicro(), 10),
		c.anchor, strings.Join(c.seen, ",")}, ":"))
}

func decodeCursor(c store.ChangeCursor) (feedCursor, error) {
	parts := strings.Split(string(c), ":")
	bad := fmt.Errorf("firestore: changes: %q is not a cursor of this store", c)
	if len(parts) != 5 || parts[0] != cursorVersion {
		return feedCursor{}, bad
	}
	from, err1 := strconv.ParseInt(parts[1], 10, 64)
	at, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return feedCursor{}, bad
	}
	fc := feedCursor{from: time.UnixMicro(from).UTC(), anchorAt: time.UnixMicro(at).UTC(), anchor: parts[3]}
	if parts[4] != "" {
		fc.seen = strings.Split(parts[4], ",")
	}
	return fc, nil
}

// Changes implements store.ChangeStore with one query (two from the zero
// cursor). It reads the changes committed since the last read, the anchor,
// and those of the last visibleWithin again: one document when nothing
// changed. A seen change or the anchor missing is ErrChangesExpired.
func (s *Store) Changes(ctx context.Context, after store.ChangeCursor, limit int) ([]store.Change, store.ChangeCursor, error) {
	if limit < 1 {
		return nil, after, fmt.Errorf("firestore: changes: limit %d, want at least 1", limit)
	}
	var cur feedCursor
	if after != "" {
		var err error
		if cur, err = decodeCursor(after); err != nil {
			return nil, after, err
		}
	}
	client, err := s.Client(ctx)
	if err != nil {
		return nil, after, err
	}
	if after == "" {
		cur, err = s.present(ctx, client)
		if err != nil {
			return nil, after, storeError("read changes", err)
		}
		return nil, cur.encode(), nil
	}
	from := cur.from
	if cur.anchor != "" && cur.anchorAt.Before(from) {
		from = cur.anchorAt
	}
	known := len(cur.seen) + 1
	snaps, err := s.changes(client).Where("at", ">=", from).OrderBy("at", firestore.Asc).
		OrderBy(firestore.DocumentID, firestore.Asc).Limit(known + limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, after, storeError("read changes", err)
	}
	var out []store.Change
	read := make([]changeRead, 0, len(snaps)) // the documents taken, seen or new
	for _, snap := range snaps {
		var d changeDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, after, fmt.Errorf("firestore: change document %s: %w", snap.Ref.ID, err)
		}
		r := changeRead{snap.Ref.ID, d.At.UTC(), snap.ReadTime}
		if r.id != cur.anchor && !slices.Contains(cur.seen, r.id) {
			if len(out) == limit {
				break // more than limit new ones: the rest next time
			}
			out = append(out, store.Change{Kind: store.ChangeKind(d.Kind), ID: d.ID, At: r.at})
		}
		read = append(read, r)
	}
	complete := len(read) == len(snaps) && len(snaps) < known+limit
	next, err := cur.advance(read, complete)
	if err != nil {
		return nil, after, err
	}
	return out, next.encode(), nil
}

// changeRead is a change document as a read saw it.
type changeRead struct {
	id       string
	at       time.Time
	readTime time.Time
}

// advance returns the cursor after the documents read (in order, those of
// the cursor among them), or ErrChangesExpired if one it expected is not
// among them. complete says that read holds every document from the
// cursor's lower bound on; else the read stopped at limit new changes, and
// the next one starts where it stopped.
func (c feedCursor) advance(read []changeRead, complete bool) (feedCursor, error) {
	var readTime time.Time
	found := 0
	anchorFound := c.anchor == ""
	for _, r := range read {
		readTime = r.readTime
		if r.id == c.anchor {
			anchorFound = true
		} else if slices.Contains(c.seen, r.id) {
			found++
		}
	}
	if complete && c.anchor != "" && !anchorFound {
		return c, fmt.Errorf("%w: the change feed's change %s, read before, is gone: it was emptied or pruned by hand, or the cursor is not of this feed", store.ErrChangesExpired, c.anchor)
	}
	if complete && found < len(c.seen) {
		return c, fmt.Errorf("%w: %d of the %d changes of the last %v read before are gone: the feed was emptied or pruned by hand", store.ErrChangesExpired, len(c.seen)-found, len(c.seen), visibleWithin)
	}
	next := c
	if len(read) > 0 {
		last := read[len(read)-1]
		if next.anchor == "" || anchorFound { // read is in order: last is after the anchor
			next.anchor, next.anchorAt = last.id, last.at
		}
		switch {
		case !complete:
			next.from = last.at // the next read goes on from here
		case readTime.IsZero(): // no read time: the last change's is the nearest
			next.from = maxTime(c.from, last.at.Add(-visibleWithin))
		case readTime.Before(c.from):
			return c, fmt.Errorf("%w: the cursor is ahead of the feed (read at %v, cursor from %v)", store.ErrChangesExpired, readTime, c.from)
		default:
			next.from = maxTime(c.from, readTime.Add(-visibleWithin))
		}
		if !readTime.IsZero() && readTime.Sub(next.anchorAt) > anchorLife {
			next.anchor = "" // the TTL policy may delete it soon
		}
	}
	next.seen = nil
	if !complete { // the seen ones the read did not reach are still ahead
		for _, id := range c.seen {
			if !slices.ContainsFunc(read, func(r changeRead) bool { return r.id == id }) {
				next.seen = append(next.seen, id)
			}
		}
	}
	for _, r := range read {
		if !r.at.Before(next.from) && r.id != next.anchor {
			next.seen = append(next.seen, r.id)
		}
	}
	return next, nil
}

// present is the cursor of the present: the latest change as the anchor,
// and every change of the last visibleWithin (by the read's time) as seen.
func (s *Store) present(ctx context.Context, client *firestore.Client) (feedCursor, error) {
	col := s.changes(client)
	latest, err := col.OrderBy("at", firestore.Desc).OrderBy(firestore.DocumentID, firestore.Desc).Limit(1).Documents(ctx).GetAll()
	if err != nil || len(latest) == 0 {
		return feedCursor{from: time.Unix(0, 0).UTC()}, err // an empty feed: every change is after
	}
	var d changeDoc
	if err := latest[0].DataTo(&d); err != nil {
		return feedCursor{}, fmt.Errorf("firestore: change document %s: %w", latest[0].Ref.ID, err)
	}
	cur := feedCursor{from: d.At.UTC(), anchorAt: d.At.UTC(), anchor: latest[0].Ref.ID}
	window := minTime(cur.anchorAt, latest[0].ReadTime.Add(-visibleWithin))
	snaps, err := col.Where("at", ">=", window).OrderBy("at", firestore.Asc).OrderBy(firestore.DocumentID, firestore.Asc).
		Documents(ctx).GetAll()
	if err != nil {
		return feedCursor{}, err
	}
	read := make([]changeRead, 0, len(snaps))
	for _, snap := range snaps {
		var d changeDoc
		if err := snap.DataTo(&d); err != nil {
			return feedCursor{}, fmt.Errorf("firestore: change document %s: %w", snap.Ref.ID, err)
		}
		read = append(read, changeRead{snap.Ref.ID, d.At.UTC(), snap.ReadTime})
	}
	cur.from = window
	cur.seen = nil
	for _, r := range read {
		if r.id != cur.anchor {
			cur.seen = append(cur.seen, r.id)
		}
	}
	next, err := cur.advance(read, true)
	return next, err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
