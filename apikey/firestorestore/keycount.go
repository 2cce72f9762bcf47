package firestorestore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The key count: {KEYS_COLLECTION}_owners/{owner}/guards/keys holds
// {active, counted_at, updated_at}, so that a capped create reads one
// document, not every key the owner ever had.
//
// active is the number of the owner's keys that count. A key counts from
// its creation until its end, the earlier of its revoked_at and its
// expires_at, has been subtracted. Firestore cannot decrement a count when
// a time passes, so ends are subtracted late, by the next capped create:
// every counted key that has an end has a document of its own under its
// owner, {KEYS_COLLECTION}_owners/{owner}/ends/{key ID} {end}, and a capped
// create at time T reads those whose end is at or before T (one query on a
// collection that holds only the owner's pending ends), subtracts them,
// and deletes them, in the commit that creates the key.
//
// So no write of one key touches a document that other keys' writes
// touch, but the count, and that blindly: creating a key increments it (an
// increment with no read, which does not contend), and so does deleting one
// that counts (decrements it); a revocation or a rotation writes the key's
// own end document. Whether a key with an expiry still counts is whether
// its end document exists: those writes read it first.
//
// A count document without counted_at (none yet, an old guard document
// holding updated_at, or one that increments recreated after it was
// deleted by hand) is not a count: the next capped create counts the
// owner's keys one by one, once, writes the end documents that active keys
// with an expiry lack, and writes the count. A key document written by
// other means (not through keygate) is not counted until then: delete the
// count document after such a write.
//
// Capped creates are optimistic: they read the count without a lock and
// commit the key with the count under a precondition on the count's update
// time (and each subtracted end document's), so that two never commit on
// the same count; the loser reads again and retries (errors.go). Capped
// rotations (RotateCapped) do the same, the replacement created and
// counted as a capped create's key, with the old key's writes under their
// own precondition in the same commit.
// Firestore's transactions would hold a read lock on the count while they
// query, and the emulator times out contending locks only after seconds.
const (
	guardCollection = "guards"
	keysCountDoc    = "keys"
	endsCollection  = "ends"
	// maxEndsPerCommit bounds the end documents one commit deletes, within
	// Firestore's 500 writes; more are subtracted over several commits.
	maxEndsPerCommit = 400
)

// ownerLockSeed hashes owners to Store.ownerLocks.
var ownerLockSeed = maphash.MakeSeed()

// keyCount is the count document, as read.
type keyCount struct {
	Active    int64      `firestore:"active"`
	CountedAt *time.Time `firestore:"counted_at"`
}

// countDoc is the key count document of owner.
func (s *Store) countDoc(client *firestore.Client, owner string) *firestore.DocumentRef {
	return s.owners(client).Doc(owner).Collection(guardCollection).Doc(keysCountDoc)
}

// endDoc is the end document of key id of owner.
func (s *Store) endDoc(client *firestore.Client, owner, id string) *firestore.DocumentRef {
	return s.owners(client).Doc(owner).Collection(endsCollection).Doc(id)
}

// end is when a key stops counting: the earlier of its revocation and its
// expiry; zero for never.
func end(k store.Key) time.Time {
	switch {
	case k.RevokedAt.IsZero():
		return k.ExpiresAt
	case k.ExpiresAt.IsZero() || k.RevokedAt.Before(k.ExpiresAt):
		return k.RevokedAt
	}
	return k.ExpiresAt
}

// countedOwner reports whether owner's keys are counted: whether it can
// name a document.
func countedOwner(owner string) bool { return keyrules.CheckPlanOwner(owner) == nil }

// endOf reads the end document of the stored key k if k has an end: nil
// if it has none. A key counts if it has no end, or its end document
// exists.
func (s *Store) endOf(ctx context.Context, client *firestore.Client, k store.Key) (*firestore.DocumentSnapshot, error) {
	if end(k).IsZero() || !countedOwner(k.Owner) {
		return nil, nil
	}
	snap, err := s.endDoc(client, k.Owner, k.ID).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return snap, nil
	}
	return snap, err
}

// counts reports whether the stored key k, whose end document is endSnap
// (see endOf), counts.
func counts(k store.Key, endSnap *firestore.DocumentSnapshot) bool {
	return countedOwner(k.Owner) && (endSnap == nil || endSnap.Exists())
}

// countNew counts, in tx, the key k created: an increment, and its end
// document if it has an end. It reads nothing.
func (s *Store) countNew(client *firestore.Client, tx *firestore.Transaction, k store.Key) error {
	if !countedOwner(k.Owner) {
		return nil
	}
	if e := end(k); !e.IsZero() {
		if err := tx.Set(s.endDoc(client, k.Owner, k.ID), map[string]any{"end": e}); err != nil {
			return err
		}
	}
	return tx.Set(s.countDoc(client, k.Owner), map[string]any{"active": firestore.Increment(1)}, firestore.MergeAll)
}

// countEnd records, in tx, that the stored key old, whose end document is
// endSnap, is now new (revoked, or its expiry moved): if it counts, its end
// document holds new's end, under a precondition that it did not change
// since it was read (a capped create may be subtracting it).
func (s *Store) countEnd(client *firestore.Client, tx *firestore.Transaction, old, new store.Key, endSnap *firestore.DocumentSnapshot) error {
	e := end(new)
	switch {
	case !counts(old, endSnap) || e.Equal(end(old)):
		return nil
	case endSnap == nil: // it had no end: it has one now (the key's precondition guards it)
		return tx.Set(s.endDoc(client, new.Owner, new.ID), map[string]any{"end": e})
	}
	return tx.Update(endSnap.Ref, []firestore.Update{{Path: "end", Value: e}}, firestore.LastUpdateTime(endSnap.UpdateTime))
}

// uncount takes, in tx, the stored key k, whose end document is endSnap,
// off its owner's count, if it counts.
func (s *Store) uncount(client *firestore.Client, tx *firestore.Transaction, k store.Key, endSnap *firestore.DocumentSnapshot) error {
	if !counts(k, endSnap) {
		return nil
	}
	if endSnap != nil {
		if err := tx.Delete(endSnap.Ref, firestore.LastUpdateTime(endSnap.UpdateTime)); err != nil {
			return err
		}
	}
	return tx.Set(s.countDoc(client, k.Owner), map[string]any{"active": firestore.Increment(-1)}, firestore.MergeAll)
}

// CreateCapped implements KeyStore: it reads the owner's key count and the
// ends due by now, and commits the key with the new count and without
// those ends unless the count is at maxActive, retrying when another write
// changed them meanwhile. It reads one document plus the keys that ended
// since the owner's last capped create, whatever the owner's history; the
// owner's first capped create reads all its keys.
func (s *Store) CreateCapped(ctx context.Context, k store.Key, maxActive int, now time.Time) error {
	if err := keyrules.CheckPlanOwner(k.Owner); err != nil {
		return err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	lock := s.ownerLock(k.Owner)
	lock.Lock()
	defer lock.Unlock()
	err = retry(ctx, func() error { return s.createCapped(ctx, client, k, maxActive, now) })
	if errors.Is(err, store.ErrKeyLimitReached) {
		return store.ErrKeyLimitReached
	}
	return storeError("create key", err)
}

// createCapped is one attempt of CreateCapped.
func (s *Store) createCapped(ctx context.Context, client *firestore.Client, k store.Key, maxActive int, now time.Time) error {
	c, err := s.committableCount(ctx, client, k.Owner, now)
	if err != nil {
		return err
	}
	if c.active-int64(len(c.ended)) >= int64(maxActive) {
		s.keepCount(ctx, client, c)
		return store.ErrKeyLimitReached
	}
	return s.commitCount(ctx, client, c, &k, func(tx *firestore.Transaction) error {
		return s.recordEvent(ctx, client, tx, store.Fact{Kind: store.FactCreated, Key: store.Stored(k)})
	})
}

// rotateCapped is the count of one attempt of RotateCapped: it reads the
// owner's count at the replacement's creation and, unless the owner holds
// more than maxActive active keys, commits the count with the replacement
// created and counted and with the writes of replace (the old key, now
// old, its end and its change).
func (s *Store) rotateCapped(ctx context.Context, client *firestore.Client, old, replacement store.Key, maxActive int, replace func(*firestore.Transaction) error) error {
	if err := keyrules.CheckPlanOwner(old.Owner); err != nil {
		return err
	}
	lock := s.ownerLock(old.Owner)
	lock.Lock()
	defer lock.Unlock()
	c, err := s.committableCount(ctx, client, old.Owner, replacement.CreatedAt)
	if err != nil {
		return err
	}
	if keyrules.OverCap(int(c.active)-len(c.ended), maxActive) {
		s.keepCount(ctx, client, c)
		return store.ErrKeyLimitReached
	}
	if _, ok := c.missing[old.ID]; ok {
		// An owner's first count, which creates the old key's end
		// document: with its end in the grace. (Without the document, the
		// old key does not count for replace, which writes none.)
		c.missing[old.ID] = end(old)
	}
	return s.commitCount(ctx, client, c, &replacement, replace)
}

// committableCount reads owner's key count at now (readCount), first
// subtracting or preparing, in commits of their own, the end documents
// that more than one commit takes.
func (s *Store) committableCount(ctx context.Context, client *firestore.Client, owner string, now time.Time) (ownerCount, error) {
	c, err := s.readCount(ctx, client, owner, now)
	if err != nil {
		return ownerCount{}, notApplied(err)
	}
	for len(c.ended)+len(c.missing) > maxEndsPerCommit { // more than a commit takes
		if c.missing == nil {
			err = s.commitCount(ctx, client, c, nil, nil) // subtract the excess first
		} else {
			err = s.prepareCount(ctx, client, c)
		}
		if err != nil {
			return ownerCount{}, err
		}
		if c, err = s.readCount(ctx, client, owner, now); err != nil {
			return ownerCount{}, notApplied(err)
		}
	}
	return c, nil
}

// keepCount writes the count c of an owner refused at its cap, if it
// subtracted ends or counted the owner first, so that the next capped
// write of an owner at its cap does not count them again. At best: the
// refusal stands either way.
func (s *Store) keepCount(ctx context.Context, client *firestore.Client, c ownerCount) {
	if c.missing != nil || len(c.ended) > 0 {
		_ = s.commitCount(ctx, client, c, nil, nil)
	}
}

// ownerLock is the lock of this process's capped writes of owner.
func (s *Store) ownerLock(owner string) *sync.Mutex {
	return &s.ownerLocks[maphash.String(ownerLockSeed, owner)%uint64(len(s.ownerLocks))]
}

// ownerCount is an owner's key count as read, brought up to a time.
type ownerCount struct {
	owner string
	snap  *firestore.DocumentSnapshot // the count document
	// active is the count: the keys that count, ended ones among them.
	active int64
	// ended are the end documents due: keys that ended and still count.
	ended []*firestore.DocumentSnapshot
	// missing are the end documents a first count found lacking: of
	// active keys with an end, which it creates, by key ID.
	missing map[string]time.Time
}

// readCount reads owner's key count and the end documents due by now; or,
// if there is no count yet, counts the owner's keys one by one, and the
// end documents they lack. The owner holds c.active - len(c.ended) active
// keys at now.
func (s *Store) readCount(ctx context.Context, client *firestore.Client, owner string, now time.Time) (ownerCount, error) {
	snap, err := s.countDoc(client, owner).Get(ctx)
	if err != nil && status.Code(err) != codes.NotFound {
		return ownerCount{}, err
	}
	s.cappedReads.Add(1)
	c := ownerCount{owner: owner, snap: snap}
	var d keyCount
	if snap.Exists() {
		if err := snap.DataTo(&d); err != nil {
			return ownerCount{}, fmt.Errorf("firestore: key count %s: %w", snap.Ref.Path, err)
		}
	}
	ends := s.owners(client).Doc(owner).Collection(endsCollection)
	if d.CountedAt != nil {
		c.active = d.Active
		c.ended, err = ends.Where("end", "<=", now).Documents(ctx).GetAll()
		s.cappedReads.Add(int64(len(c.ended)))
		return c, err
	}
	// No count yet: a key counts if it is active at now, or if it has an
	// end document (its end is then subtracted with the others due).
	keys, err := client.Collection(s.collection).Where("owner", "==", owner).Select("expires_at", "revoked_at").Documents(ctx).GetAll()
	if err != nil {
		return ownerCount{}, err
	}
	endSnaps, err := ends.Documents(ctx).GetAll()
	if err != nil {
		return ownerCount{}, err
	}
	s.cappedReads.Add(int64(len(keys) + len(endSnaps)))
	hasEnd := make(map[string]*firestore.DocumentSnapshot, len(endSnaps))
	for _, e := range endSnaps {
		hasEnd[e.Ref.ID] = e
	}
	c.missing = map[string]time.Time{}
	for _, snap := range keys {
		var kd struct {
			ExpiresAt *time.Time `firestore:"expires_at"`
			RevokedAt *time.Time `firestore:"revoked_at"`
		}
		if err := snap.DataTo(&kd); err != nil {
			return ownerCount{}, fmt.Errorf("firestore: key document %s: %w", snap.Ref.ID, err)
		}
		var k store.Key
		if kd.ExpiresAt != nil {
			k.ExpiresAt = *kd.ExpiresAt
		}
		if kd.RevokedAt != nil {
			k.RevokedAt = *kd.RevokedAt
		}
		e := end(k)
		ed, ok := hasEnd[snap.Ref.ID]
		switch {
		case ok:
			c.active++
			if v, err := ed.DataAt("end"); err == nil {
				if t, _ := v.(time.Time); !t.After(now) {
					c.ended = append(c.ended, ed)
				}
			}
		case e.IsZero():
			c.active++
		case e.After(now):
			c.active++
			c.missing[snap.Ref.ID] = e
		}
	}
	// End documents of keys that are gone count nothing: they go with
	// the ended ones.
	keyIDs := make(map[string]bool, len(keys))
	for _, k := range keys {
		keyIDs[k.Ref.ID] = true
	}
	for id, e := range hasEnd {
		if !keyIDs[id] {
			c.ended = append(c.ended, e)
			c.active++ // subtracted with them
		}
	}
	return c, nil
}

// prepareCount brings the end documents of an owner not counted yet
// toward what its count needs, maxEndsPerCommit at a time, before the
// commit that counts: it deletes the due ones (a key whose end passed and
// has no end document does not count, as one whose end is subtracted) and
// creates the missing ones (an active key with an end document counts, as
// one without). Either way the count it will write is the same.
func (s *Store) prepareCount(ctx context.Context, client *firestore.Client, c ownerCount) error {
	err := commit(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
		n := 0
		for _, e := range c.ended[:min(len(c.ended), maxEndsPerCommit)] {
			if err := tx.Delete(e.Ref, firestore.LastUpdateTime(e.UpdateTime)); err != nil {
				return err
			}
			n++
		}
		for id, e := range c.missing {
			if n == maxEndsPerCommit {
				break
			}
			if err := tx.Create(s.endDoc(client, c.owner, id), map[string]any{"end": e}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if status.Code(err) == codes.AlreadyExists { // another write made one meanwhile
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return err
}

// commitCount writes the count c read, less its ended keys (at most
// maxEndsPerCommit of them), with k created and counted if k is not nil,
// and the writes of also if it is not nil: under preconditions that fail
// if another write changed the count or one of those end documents (or
// what also writes under its own) since they were read.
func (s *Store) commitCount(ctx context.Context, client *firestore.Client, c ownerCount, k *store.Key, also func(*firestore.Transaction) error) error {
	ended := c.ended[:min(len(c.ended), maxEndsPerCommit)]
	active := c.active - int64(len(ended))
	err := runTransaction(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
		if k != nil {
			if err := tx.Create(client.Collection(s.collection).Doc(k.ID), encodeKey(*k)); err != nil {
				return err
			}
			if e := end(*k); !e.IsZero() {
				if err := tx.Create(s.endDoc(client, k.Owner, k.ID), map[string]any{"end": e}); err != nil {
					return err
				}
			}
			active++
		}
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		for _, e := range ended {
			if err := tx.Delete(e.Ref, firestore.LastUpdateTime(e.UpdateTime)); err != nil {
				return err
			}
		}
		for id, e := range c.missing {
			if err := tx.Create(s.endDoc(client, c.owner, id), map[string]any{"end": e}); err != nil {
				return err
			}
		}
		count := map[string]any{"active": active, "counted_at": firestore.ServerTimestamp, "updated_at": firestore.ServerTimestamp}
		if !c.snap.Exists() {
			return tx.Create(c.snap.Ref, count)
		}
		if c.missing == nil {
			delete(count, "counted_at") // counted before: keep when
		}
		var updates []firestore.Update
		for path, v := range count {
			updates = append(updates, firestore.Update{Path: path, Value: v})
		}
		return tx.Update(c.snap.Ref, updates, firestore.LastUpdateTime(c.snap.UpdateTime))
	}, firestore.MaxAttempts(1))
	switch status.Code(err) {
	case codes.AlreadyExists, codes.FailedPrecondition, codes.NotFound:
		// The key's ID is taken, or another write changed the count or an
		// end document.
		if k != nil {
			if _, gerr := client.Collection(s.collection).Doc(k.ID).Get(ctx); gerr == nil {
				return store.ErrKeyExists
			}
		}
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return err
}
