package firestorestore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The outbox: one document per event, {KEYS_COLLECTION}_events/{ce-id},
// {type, subject, time, data, pending_at}, created in the transaction of
// its fact. pending_at (the event's time) marks it unpublished: the sweep's
// query is on it alone (a single-field index, no composite one), and
// MarkPublished deletes it and sets published_at and expires_at, for a TTL
// policy to delete the document eventLife later. An unpublished event has
// no expires_at: it is never deleted unpublished. A key's last expiry
// notice is its document's expiry_notice.
const (
	eventsSuffix = "_events"
	eventLife    = 7 * 24 * time.Hour
)

// eventDoc is an event's document.
type eventDoc struct {
	Type    string    `firestore:"type"`
	Subject string    `firestore:"subject"`
	Time    time.Time `firestore:"time"`
	Data    string    `firestore:"data"`
}

// events returns the collection of events.
func (s *Store) events(client *firestore.Client) *firestore.CollectionRef {
	return client.Collection(s.collection + eventsSuffix)
}

// recordEvent writes, in tx, the event of fact f if ctx asks for one.
func (s *Store) recordEvent(ctx context.Context, client *firestore.Client, tx *firestore.Transaction, f store.Fact) error {
	ev, ok := store.Record(ctx, f)
	if !ok {
		return nil
	}
	return tx.Set(s.events(client).Doc(ev.ID), map[string]any{
		"type": ev.Type, "subject": ev.Subject, "time": ev.Time, "data": string(ev.Data), "pending_at": ev.Time,
	})
}

func decodeEvent(snap *firestore.DocumentSnapshot) (store.Event, error) {
	var d eventDoc
	if err := snap.DataTo(&d); err != nil {
		return store.Event{}, fmt.Errorf("firestore: event document %s: %w", snap.Ref.ID, err)
	}
	if !json.Valid([]byte(d.Data)) {
		return store.Event{}, fmt.Errorf("firestore: event document %s: data is not JSON", snap.Ref.ID)
	}
	return store.Event{ID: snap.Ref.ID, Type: d.Type, Subject: d.Subject, Time: d.Time.UTC(), Data: json.RawMessage(d.Data)}, nil
}

// GetEvent implements store.EventStore.
func (s *Store) GetEvent(ctx context.Context, id string) (store.Event, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return store.Event{}, err
	}
	snap, err := s.events(client).Doc(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return store.Event{}, store.ErrEventNotFound
	}
	if err != nil {
		return store.Event{}, storeError("get event", err)
	}
	return decodeEvent(snap)
}

// Unpublished implements store.EventStore: one query on pending_at.
func (s *Store) Unpublished(ctx context.Context, before time.Time, limit int) ([]store.Event, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	snaps, err := s.events(client).Where("pending_at", "<=", before).OrderBy("pending_at", firestore.Asc).
		Limit(max(limit, 1)).Documents(ctx).GetAll()
	if err != nil {
		return nil, storeError("read unpublished events", err)
	}
	out := make([]store.Event, 0, len(snaps))
	for _, snap := range snaps {
		ev, err := decodeEvent(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out[:min(len(out), max(limit, 0))], nil
}

// MarkPublished implements store.EventStore: one batched write, each
// document updated only if it exists.
func (s *Store) MarkPublished(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	for len(ids) > 0 {
		n := min(len(ids), maxTransactionWrites)
		bw := client.BulkWriter(ctx)
		var jobs []*firestore.BulkWriterJob
		for _, id := range ids[:n] {
			j, err := bw.Update(s.events(client).Doc(id), []firestore.Update{
				{Path: "pending_at", Value: firestore.Delete},
				{Path: "published_at", Value: at},
				{Path: "expires_at", Value: at.Add(eventLife)},
			})
			if err != nil {
				bw.End()
				return storeError("mark events published", err)
			}
			jobs = append(jobs, j)
		}
		bw.End()
		for _, j := range jobs {
			if _, err := j.Results(); err != nil && status.Code(err) != codes.NotFound {
				return storeError("mark events published", err)
			}
		}
		ids = ids[n:]
	}
	return nil
}

// Expiring implements store.EventStore: one query on expires_at (limit+1
// documents, the last to tell whether more follow), the revoked and
// replaced keys left out as read.
func (s *Store) Expiring(ctx context.Context, from, to time.Time, after string, limit int) ([]store.ExpiringKey, string, error) {
	limit = max(limit, 1)
	client, err := s.Client(ctx)
	if err != nil {
		return nil, "", err
	}
	col := client.Collection(s.collection)
	q := col.Where("expires_at", ">", from).Where("expires_at", "<=", to).
		OrderBy("expires_at", firestore.Asc).OrderBy(firestore.DocumentID, firestore.Asc)
	if after != "" {
		snap, err := col.Doc(after).Get(ctx)
		if err != nil && status.Code(err) != codes.NotFound {
			return nil, "", storeError("read expiring keys", err)
		}
		if snap != nil && snap.Exists() {
			q = q.StartAfter(snap)
		}
	}
	snaps, err := q.Limit(limit + 1).Documents(ctx).GetAll()
	if err != nil {
		return nil, "", storeError("read expiring keys", err)
	}
	next := ""
	if len(snaps) > limit {
		snaps = snaps[:limit]
		next = snaps[limit-1].Ref.ID
	}
	var out []store.ExpiringKey
	for _, snap := range snaps {
		k, err := decodeKey(snap)
		if err != nil {
			return nil, "", err
		}
		if !k.RevokedAt.IsZero() || k.ReplacedBy != "" {
			continue
		}
		notice, _ := snap.DataAt("expiry_notice")
		n, _ := notice.(string)
		out = append(out, store.ExpiringKey{Key: k, Notice: n})
	}
	return out, next, nil
}

// NoteExpiry implements store.EventStore: the key's expiry_notice and the
// event, in one transaction that reads the key.
func (s *Store) NoteExpiry(ctx context.Context, id, notice string) (bool, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return false, err
	}
	ref := client.Collection(s.collection).Doc(id)
	noted := false
	err = runRetried(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
		noted = false
		snap, err := tx.Get(ref)
		if status.Code(err) == codes.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		k, err := decodeKey(snap)
		if err != nil {
			return err
		}
		prev, _ := snap.DataAt("expiry_notice")
		p, _ := prev.(string)
		if !k.RevokedAt.IsZero() || store.NoticeRank(p) >= store.NoticeRank(notice) {
			return nil
		}
		if err := tx.Update(ref, []firestore.Update{{Path: "expiry_notice", Value: notice}}); err != nil {
			return err
		}
		noted = true
		return s.recordEvent(ctx, client, tx, store.Fact{Kind: store.FactExpiring, Key: k, Notice: notice})
	})
	return noted, storeError("note expiry", err)
}

// crossing is a quota threshold a usage batch reaches, and the month
// document that records it (its thresholds field: the percentages
// reported).
type crossing struct {
	store.Threshold
	month   *firestore.DocumentRef
	percent int
}

// crossed reads, in tx, the month documents of the batch's months with a
// quota, and returns the thresholds the batch reaches that they do not
// record: nothing, and no read, unless ctx asks for events. Its writes
// (ArrayUnion, Set with MergeAll) come after the increments of the same
// documents, which they do not touch.
func (s *Store) crossed(ctx context.Context, client *firestore.Client, tx *firestore.Transaction, counts []store.UsageCount) ([]crossing, error) {
	if !store.Recording(ctx) {
		return nil, nil
	}
	qs := keyrules.QuotaMonths(counts)
	if len(qs) == 0 {
		return nil, nil
	}
	refs := make([]*firestore.DocumentRef, len(qs))
	for i, q := range qs {
		if q.KeyID != "" {
			refs[i] = client.Collection(s.collection).Doc(q.KeyID).Collection(usageCollection).Doc(string(q.Month))
		} else {
			refs[i] = s.owners(client).Doc(q.Owner).Collection(usageCollection).Doc(string(q.Month))
		}
	}
	snaps, err := tx.GetAll(refs)
	if err != nil {
		return nil, err
	}
	var out []crossing
	for i, q := range qs {
		before, err := usageTotal(snaps[i])
		if err != nil {
			return nil, err
		}
		var reported []int
		if snaps[i].Exists() {
			if v, err := snaps[i].DataAt("thresholds"); err == nil {
				vs, _ := v.([]any)
				for _, p := range vs {
					if n, ok := p.(int64); ok {
						reported = append(reported, int(n))
					}
				}
			}
		}
		for _, t := range keyrules.Crossed(q, before, reported) {
			out = append(out, crossing{Threshold: t, month: refs[i], percent: t.Percent})
		}
	}
	return out, nil
}
