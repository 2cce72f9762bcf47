package firestorestore

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// GetMany implements LeakStore: one batched get (BatchGetDocuments) of the
// key documents, each ID once.
func (s *Store) GetMany(ctx context.Context, ids []string) ([]store.Key, error) {
	if err := keyrules.CheckGetMany(ids); err != nil {
		return nil, err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	col := client.Collection(s.collection)
	refs := make([]*firestore.DocumentRef, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			refs = append(refs, col.Doc(id))
		}
	}
	snaps, err := client.GetAll(ctx, refs)
	if err != nil {
		return nil, storeError("get keys", err)
	}
	keys := []store.Key{}
	for _, snap := range snaps {
		if !snap.Exists() {
			continue
		}
		k, err := decodeKey(snap)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// RecordLeak implements LeakStore, as Revoke does: it reads the key and,
// unless a leak is recorded already, commits the leak under a precondition
// that the key did not change since it was read; else it reads again. It
// records no change: a leak alone does not change what a key allows.
func (s *Store) RecordLeak(ctx context.Context, id string, at time.Time, url string) (store.Key, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return store.Key{}, err
	}
	ref := client.Collection(s.collection).Doc(id)
	var k store.Key
	err = rewriteKey(ctx, ref, func(snap *firestore.DocumentSnapshot, stored store.Key) error {
		if k = stored; !k.LeakedAt.IsZero() {
			return nil
		}
		k.LeakedAt, k.LeakURL = store.StoredTime(at), url
		return commit(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
			if err := s.recordEvent(ctx, client, tx, store.Fact{Kind: store.FactLeaked, Key: k}); err != nil {
				return err
			}
			return tx.Update(ref, []firestore.Update{{Path: "leaked_at", Value: k.LeakedAt}, {Path: "leak_url", Value: url}},
				firestore.LastUpdateTime(snap.UpdateTime))
		})
	})
	if err != nil {
		return store.Key{}, storeError("record leak", err)
	}
	return k, nil
}
