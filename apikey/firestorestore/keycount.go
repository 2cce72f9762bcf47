package firestorestore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The key count: {KEYS_COLLECTION}_owners/{owner}/guards/keys holds
// {active, counted_to, updated_at}, so that a capped create reads one
// document, not every key the owner ever had.
//
// A key counts from its creation to its end, the earlier of its revoked_at
// and its expires_at (never, without either). active is the number of the
// owner's keys whose end is after counted_to. Firestore cannot decrement a
// count when a time passes, so ends are subtracted late, by the next capped
// create: it reads the keys whose end fell since counted_to (two queries
// on the owner and expires_at, or revoked_at), subtracts them, and moves
// counted_to on to its time less clockSkew; ends in that last stretch it
// subtracts for its own check only, and the next create reads them again.
// So the writes that a key's end does not move behind counted_to leave the
// count alone: a revocation (its time is its writer's present, after
// counted_to) and a rotation (the old key's expiry moves to the end of its
// grace) do not touch it. Creating a key adds it (a blind increment: no
// read, no contention), and deleting one still counted takes it off; only
// those of a key that has an end already read counted_to first.
//
// A count document without counted_to (none yet, an old guard document,
// or one deleted by hand, which increments then recreate without it) is
// not a count: the next capped create counts the owner's keys one by one,
// once, and writes it. A key document written by other means is not
// counted until then: delete the count document after such a write.
//
// Capped creates are optimistic: they read the count without a lock and
// commit the key with the count under a precondition on the count's update
// time, so that two never commit on the same count; the loser reads again
// and retries (errors.go). Firestore's transactions would hold a read lock
// on the count while they query, and the emulator times out contending
// locks only after seconds.
const (
	guardCollection = "guards"
	keysCountDoc    = "keys"
	// clockSkew is the most the clocks of two writers are taken to differ
	// by: a revocation is never timed before counted_to unless its
	// writer's clock is behind by more. If one is, its key stays counted
	// (the cap refuses early) until the count is recreated: never the
	// other way.
	clockSkew = time.Minute
)

// ownerLockSeed hashes owners to Store.ownerLocks.
var ownerLockSeed = maphash.MakeSeed()

// keyCount is the count document, as read.
type keyCount struct {
	Active    int64      `firestore:"active"`
	CountedTo *time.Time `firestore:"counted_to"`
}

// countDoc is the key count document of owner.
func (s *Store) countDoc(client *firestore.Client, owner string) *firestore.DocumentRef {
	return s.owners(client).Doc(owner).Collection(guardCollection).Doc(keysCountDoc)
}

// end is when k stops counting: the earlier of its revocation and its
// expiry; zero for never.
func end(revokedAt, expiresAt time.Time) time.Time {
	switch {
	case revokedAt.IsZero():
		return expiresAt
	case expiresAt.IsZero() || revokedAt.Before(expiresAt):
		return revokedAt
	}
	return expiresAt
}

// counted reports whether a key that ends at e counts after countedTo.
func counted(e, countedTo time.Time) bool { return e.IsZero() || e.After(countedTo) }

// adjustCount adds sign (1 or -1) to the count of k's owner in tx, for a
// key created (1) or deleted (-1). A key without an end counts in any
// count: the increment is blind. One with an end counts only if its end is
// after counted_to, which it reads first; so call it before tx's writes.
func (s *Store) adjustCount(client *firestore.Client, tx *firestore.Transaction, k store.Key, sign int64) error {
	if store.CheckPlanOwner(k.Owner) != nil {
		return nil // an owner that cannot name a document is not counted
	}
	doc := s.countDoc(client, k.Owner)
	if e := end(k.RevokedAt, k.ExpiresAt); !e.IsZero() {
		snap, err := tx.Get(doc)
		if status.Code(err) == codes.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		var c keyCount
		if err := snap.DataTo(&c); err != nil {
			return fmt.Errorf("firestore: key count %s: %w", doc.Path, err)
		}
		if c.CountedTo == nil || !counted(e, *c.CountedTo) {
			return nil
		}
	}
	return tx.Set(doc, map[string]any{"active": firestore.Increment(sign)}, firestore.MergeAll)
}

// CreateCapped implements KeyStore: it reads the owner's key count and the
// keys that ended since it was counted, and commits the key with the new
// count unless that is at maxActive, retrying when another write changed
// the count meanwhile. It reads one document plus the keys that ended since
// the owner's last capped create (or within clockSkew of it), whatever the
// owner's history; the owner's first capped create reads all its keys.
func (s *Store) CreateCapped(ctx context.Context, k store.Key, maxActive int, now time.Time) error {
	if err := store.CheckPlanOwner(k.Owner); err != nil {
		return err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	lock := &s.ownerLocks[maphash.String(ownerLockSeed, k.Owner)%uint64(len(s.ownerLocks))]
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
	c, err := s.readCount(ctx, client, k.Owner, now)
	if err != nil {
		return err
	}
	if c.active-c.pending >= int64(maxActive) {
		return store.ErrKeyLimitReached
	}
	active := c.active
	if counted(end(k.RevokedAt, k.ExpiresAt), c.countedTo) {
		active++
	}
	err = client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		if err := tx.Create(client.Collection(s.collection).Doc(k.ID), encodeKey(k)); err != nil {
			return err
		}
		if !c.snap.Exists() {
			return tx.Create(c.snap.Ref, map[string]any{"active": active, "counted_to": c.countedTo, "updated_at": firestore.ServerTimestamp})
		}
		return tx.Update(c.snap.Ref, []firestore.Update{
			{Path: "active", Value: active}, {Path: "counted_to", Value: c.countedTo}, {Path: "updated_at", Value: firestore.ServerTimestamp},
		}, firestore.LastUpdateTime(c.snap.UpdateTime))
	}, firestore.MaxAttempts(1))
	switch status.Code(err) {
	case codes.AlreadyExists, codes.FailedPrecondition:
		// The key's ID is taken, or another write changed the count.
		if _, gerr := client.Collection(s.collection).Doc(k.ID).Get(ctx); gerr == nil {
			return store.ErrKeyExists
		}
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return err
}

// ownerCount is an owner's key count brought up to a time: the count
// document as read, and what to write in it.
type ownerCount struct {
	snap      *firestore.DocumentSnapshot
	countedTo time.Time // the new counted_to
	active    int64     // the keys that count after countedTo
	pending   int64     // of those, the ones that ended by now
}

// readCount reads owner's key count and the keys that ended since it was
// counted (all the owner's keys, if it is not a count), and brings it up to
// now: the owner holds c.active - c.pending active keys at now.
func (s *Store) readCount(ctx context.Context, client *firestore.Client, owner string, now time.Time) (ownerCount, error) {
	snap, err := s.countDoc(client, owner).Get(ctx)
	if err != nil && status.Code(err) != codes.NotFound {
		return ownerCount{}, err
	}
	s.cappedReads.Add(1)
	var d keyCount
	if snap.Exists() {
		if err := snap.DataTo(&d); err != nil {
			return ownerCount{}, fmt.Errorf("firestore: key count %s: %w", snap.Ref.Path, err)
		}
	}
	c := ownerCount{snap: snap, countedTo: now.Add(-clockSkew)}
	var ends []time.Time // of the keys that may have ended since the count
	if d.CountedTo == nil {
		if ends, err = s.keyEnds(ctx, client.Collection(s.collection).Where("owner", "==", owner)); err != nil {
			return ownerCount{}, err
		}
	} else {
		c.active = d.Active
		if d.CountedTo.After(c.countedTo) {
			c.countedTo = *d.CountedTo
		}
		if ends, err = s.endedSince(ctx, client, owner, *d.CountedTo, now); err != nil {
			return ownerCount{}, err
		}
	}
	for _, e := range ends {
		switch {
		case d.CountedTo == nil && counted(e, c.countedTo): // counting from scratch
			c.active++
		case d.CountedTo != nil && !counted(e, c.countedTo): // ended before the new counted_to
			c.active--
		}
		if counted(e, c.countedTo) && !e.IsZero() && !e.After(now) {
			c.pending++ // ended, but within clockSkew: subtracted for this check only
		}
	}
	return c, nil
}

// endedSince returns the ends of owner's keys that end after from and by
// now: two queries, on expires_at and on revoked_at, which need the
// indexes of firestore.indexes.json.
func (s *Store) endedSince(ctx context.Context, client *firestore.Client, owner string, from, now time.Time) ([]time.Time, error) {
	if !now.After(from) {
		return nil, nil
	}
	col := client.Collection(s.collection)
	seen := map[string]time.Time{}
	for _, field := range endFields {
		if err := s.collectEnds(ctx, endedQuery(col, owner, field, from, now), seen); err != nil {
			return nil, err
		}
	}
	ends := make([]time.Time, 0, len(seen))
	for _, e := range seen {
		if e.After(from) { // a key revoked after it expired ended at its expiry
			ends = append(ends, e)
		}
	}
	return ends, nil
}

// endFields are the fields whose times end a key.
var endFields = []string{"expires_at", "revoked_at"}

// endedQuery finds owner's keys whose field is after from and not after now.
func endedQuery(col *firestore.CollectionRef, owner, field string, from, now time.Time) firestore.Query {
	return col.Where("owner", "==", owner).Where(field, ">", from).Where(field, "<=", now)
}

// keyEnds returns the ends of the keys q finds (zero for keys without one).
func (s *Store) keyEnds(ctx context.Context, q firestore.Query) ([]time.Time, error) {
	seen := map[string]time.Time{}
	if err := s.collectEnds(ctx, q, seen); err != nil {
		return nil, err
	}
	ends := make([]time.Time, 0, len(seen))
	for _, e := range seen {
		ends = append(ends, e)
	}
	return ends, nil
}

// collectEnds adds the end of each key q finds to ends, by ID, reading only
// their expires_at and revoked_at.
func (s *Store) collectEnds(ctx context.Context, q firestore.Query, ends map[string]time.Time) error {
	snaps, err := q.Select("expires_at", "revoked_at").Documents(ctx).GetAll()
	if err != nil {
		return err
	}
	s.cappedReads.Add(int64(len(snaps)))
	for _, snap := range snaps {
		var d struct {
			ExpiresAt *time.Time `firestore:"expires_at"`
			RevokedAt *time.Time `firestore:"revoked_at"`
		}
		if err := snap.DataTo(&d); err != nil {
			return fmt.Errorf("firestore: key document %s: %w", snap.Ref.ID, err)
		}
		var exp, rev time.Time
		if d.ExpiresAt != nil {
			exp = *d.ExpiresAt
		}
		if d.RevokedAt != nil {
			rev = *d.RevokedAt
		}
		ends[snap.Ref.ID] = end(rev, exp)
	}
	return nil
}
