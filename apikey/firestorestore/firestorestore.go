package firestorestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Store is a KeyStore in a Firestore collection: one document per
// key, whose ID is the key ID. docs/reference.md documents the fields.
//
// Its client is created on first use and kept for the life of the process;
// a failed creation is retried by the next call.
type Store struct {
	project    string
	database   string
	collection string

	mu     sync.Mutex
	client *firestore.Client

	// listedDocs counts the documents ListByOwner's queries returned: the
	// reads listing costs. Tests read it.
	listedDocs atomic.Int64

	// cappedReads counts the documents CreateCapped read: the key counts
	// and the keys it read to keep them. Tests read it.
	cappedReads atomic.Int64

	// ownerLocks serialize this process's capped creates of an owner (by
	// a hash of the owner): they would otherwise race for the owner's key
	// count and retry (keycount.go). Other processes are kept out by the
	// count's precondition.
	ownerLocks [64]sync.Mutex
}

// keyDoc is the Firestore document of a key.
type keyDoc struct {
	Owner        string     `firestore:"owner"`
	Name         string     `firestore:"name"`
	Scopes       []string   `firestore:"scopes"`
	Hint         string     `firestore:"hint"`
	CreatedAt    time.Time  `firestore:"created_at"`
	ExpiresAt    *time.Time `firestore:"expires_at,omitempty"`
	RevokedAt    *time.Time `firestore:"revoked_at,omitempty"`
	RateLimit    float64    `firestore:"rate_limit,omitempty"`
	Burst        int        `firestore:"burst,omitempty"`
	MonthlyQuota int64      `firestore:"monthly_quota,omitempty"`
	LastUsedAt   *time.Time `firestore:"last_used_at,omitempty"`
	ReplacedBy   string     `firestore:"replaced_by,omitempty"`
	CreatedBy    string     `firestore:"created_by,omitempty"`
	LeakedAt     *time.Time `firestore:"leaked_at,omitempty"`
	LeakURL      string     `firestore:"leak_url,omitempty"`
}

// Config says where the store keeps its documents.
type Config struct {
	// Project is the Google Cloud project; empty means detect it from the
	// credentials.
	Project string
	// Database is the Firestore database ID; empty means "(default)".
	Database string
	// Collection holds the keys; empty means "api_keys". Plans, owners'
	// usage, meters, the change feed and the Stripe export's cursor live
	// in the collections named after it with "_owners", "_meters",
	// "_changes" and "_billing" appended.
	Collection string
}

// New returns a store where cfg says. It does not connect: the client is
// created by the first call. Its calls have no deadline but their
// context's: bound them with store.WithTimeout, as the Gate does.
func New(cfg Config) *Store {
	if cfg.Database == "" {
		cfg.Database = "(default)"
	}
	if cfg.Collection == "" {
		cfg.Collection = "api_keys"
	}
	return &Store{project: cfg.Project, database: cfg.Database, collection: cfg.Collection}
}

// Client returns the store's Firestore client, creating it if need be.
func (s *Store) Client(ctx context.Context) (*firestore.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	project := s.project
	if project == "" {
		project = firestore.DetectProjectID
	}
	c, err := firestore.NewClientWithDatabase(ctx, project, s.database)
	if err != nil {
		return nil, clientError{err}
	}
	s.client = c
	return c, nil
}

// Close closes the client, if one was created.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}

// Get implements KeyStore.
func (s *Store) Get(ctx context.Context, id string) (store.Key, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return store.Key{}, err
	}
	snap, err := client.Collection(s.collection).Doc(id).Get(ctx)
	if err != nil {
		return store.Key{}, storeError("get key", err)
	}
	return decodeKey(snap)
}

// ReadKey implements KeyReader: the key document and its month's usage
// document in one batched get.
func (s *Store) ReadKey(ctx context.Context, id string, month store.Month) (store.Key, int64, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return store.Key{}, 0, err
	}
	doc := client.Collection(s.collection).Doc(id)
	snaps, err := client.GetAll(ctx, []*firestore.DocumentRef{doc, doc.Collection(usageCollection).Doc(string(month))})
	if err != nil {
		return store.Key{}, 0, storeError("read key", err)
	}
	if !snaps[0].Exists() {
		return store.Key{}, 0, store.ErrKeyNotFound
	}
	k, err := decodeKey(snaps[0])
	if err != nil {
		return store.Key{}, 0, err
	}
	total, err := usageTotal(snaps[1])
	return k, total, err
}

// Create implements KeyStore, in a transaction: outside one, a commit
// whose answer was lost is resent, and answered ALREADY_EXISTS (commit.go).
func (s *Store) Create(ctx context.Context, k store.Key) error {
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	err = runRetried(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
		if err := s.countNew(client, tx, store.Stored(k)); err != nil {
			return err
		}
		if err := s.recordEvent(ctx, client, tx, store.Fact{Kind: store.FactCreated, Key: store.Stored(k)}); err != nil {
			return err
		}
		return tx.Create(client.Collection(s.collection).Doc(k.ID), encodeKey(k))
	})
	return storeError("create key", err)
}

// ListByOwner implements KeyStore with one query that reads at most limit+1
// documents. It needs the composite index of firestore.indexes.json.
func (s *Store) ListByOwner(ctx context.Context, owner string, after *store.PagePosition, limit int) (store.KeyPage, error) {
	if err := keyrules.CheckPageLimit(limit); err != nil {
		return store.KeyPage{}, err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return store.KeyPage{}, err
	}
	snaps, err := ownerPageQuery(client.Collection(s.collection), owner, after, limit).Documents(ctx).GetAll()
	if err != nil {
		return store.KeyPage{}, storeError("list keys", err)
	}
	s.listedDocs.Add(int64(len(snaps)))
	keys := make([]store.Key, 0, len(snaps))
	for _, snap := range snaps {
		k, err := decodeKey(snap)
		if err != nil {
			return store.KeyPage{}, err
		}
		keys = append(keys, k)
	}
	return keyrules.PageOf(keys, limit), nil
}

// ownerPageQuery is the query of a page of limit keys of owner after after,
// in keyrules.ListOrder: it asks for limit+1 documents, the last to tell whether more
// follow.
func ownerPageQuery(col *firestore.CollectionRef, owner string, after *store.PagePosition, limit int) firestore.Query {
	q := col.Where("owner", "==", owner).
		OrderBy("created_at", firestore.Desc).
		OrderBy(firestore.DocumentID, firestore.Desc)
	if after != nil {
		q = q.StartAfter(store.StoredTime(after.CreatedAt), after.ID)
	}
	return q.Limit(limit + 1)
}

// Revoke implements KeyStore: it reads the key and, unless it is revoked
// already (the first revocation time is kept), commits its revocation with
// the change's record and the key's end for its owner's count
// (keycount.go), under a precondition that the key did not change since it
// was read; else it reads again. Two revocations of one key at once thus
// never wait on each other's locks: the second finds the key revoked.
func (s *Store) Revoke(ctx context.Context, id string, at time.Time) (store.Key, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return store.Key{}, err
	}
	ref := client.Collection(s.collection).Doc(id)
	var k store.Key
	err = rewriteKey(ctx, ref, func(snap *firestore.DocumentSnapshot, old store.Key) error {
		if k = old; !k.RevokedAt.IsZero() {
			return nil
		}
		k.RevokedAt = store.StoredTime(at)
		endSnap, err := s.endOf(ctx, client, old)
		if err != nil {
			return notApplied(err)
		}
		return commit(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
			if err := tx.Update(ref, []firestore.Update{{Path: "revoked_at", Value: k.RevokedAt}}, firestore.LastUpdateTime(snap.UpdateTime)); err != nil {
				return err
			}
			if err := s.countEnd(client, tx, old, k, endSnap); err != nil {
				return err
			}
			if err := s.recordEvent(ctx, client, tx, store.Fact{Kind: store.FactRevoked, Key: k}); err != nil {
				return err
			}
			return s.recordChange(client, tx, store.ChangeKey, id)
		})
	})
	if err != nil {
		return store.Key{}, storeError("revoke key", err)
	}
	return k, nil
}

// Delete implements KeyStore: the key, with the change's record and, if
// the key counts, its owner's count, under a precondition that the key did
// not change since it was read.
func (s *Store) Delete(ctx context.Context, id string) error {
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	ref := client.Collection(s.collection).Doc(id)
	err = rewriteKey(ctx, ref, func(snap *firestore.DocumentSnapshot, k store.Key) error {
		endSnap, err := s.endOf(ctx, client, k)
		if err != nil {
			return notApplied(err)
		}
		return commit(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
			if err := tx.Delete(ref, firestore.LastUpdateTime(snap.UpdateTime)); err != nil {
				return err
			}
			if err := s.uncount(client, tx, k, endSnap); err != nil {
				return err
			}
			if err := s.recordEvent(ctx, client, tx, store.Fact{Kind: store.FactDeleted, Key: k}); err != nil {
				return err
			}
			return s.recordChange(client, tx, store.ChangeKey, id)
		})
	})
	return storeError("delete key", err)
}

// Rotate implements KeyStore: the replacement and the old key's new
// expiry, committed at once with the old key's change and both keys' count,
// under a precondition that the old key did not change since it was read.
// A key that names a replacement reads it too, to tell whether it is still
// active (ErrKeyReplaced).
func (s *Store) Rotate(ctx context.Context, id string, replacement store.Key, graceEnd time.Time) (store.Key, error) {
	return s.rotate(ctx, id, replacement, graceEnd, -1)
}

// RotateCapped implements KeyStore: as Rotate, but the owner's key count is
// read and written as CreateCapped does (keycount.go), the replacement
// counted with the rest, under a precondition on the count too: two
// rotations of one owner's keys never commit on the same count, whichever
// process makes them. It reads the old key, its end document and
// replacement if any, the count and the ends due: a few documents,
// whatever the owner's history.
func (s *Store) RotateCapped(ctx context.Context, id string, replacement store.Key, graceEnd time.Time, maxActive int) (store.Key, error) {
	return s.rotate(ctx, id, replacement, graceEnd, max(maxActive, 0)) // a negative cap is no key, not none
}

// rotate is Rotate, and with maxActive ≥ 0 RotateCapped.
func (s *Store) rotate(ctx context.Context, id string, replacement store.Key, graceEnd time.Time, maxActive int) (store.Key, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return store.Key{}, err
	}
	col := client.Collection(s.collection)
	var old store.Key
	err = rewriteKey(ctx, col.Doc(id), func(snap *firestore.DocumentSnapshot, stored store.Key) error {
		successor, err := s.successor(ctx, client, stored)
		if err != nil {
			return notApplied(err)
		}
		if old, err = keyrules.Rotated(stored, successor, replacement, graceEnd); err != nil {
			return err
		}
		endSnap, err := s.endOf(ctx, client, stored)
		if err != nil {
			return notApplied(err)
		}
		replace := func(tx *firestore.Transaction) error {
			if err := tx.Update(col.Doc(id), []firestore.Update{{Path: "expires_at", Value: old.ExpiresAt},
				{Path: "replaced_by", Value: old.ReplacedBy}}, firestore.LastUpdateTime(snap.UpdateTime)); err != nil {
				return err
			}
			if err := s.countEnd(client, tx, stored, old, endSnap); err != nil {
				return err
			}
			if err := s.recordEvent(ctx, client, tx, store.Fact{Kind: store.FactRotated, Key: old, Replacement: store.Stored(replacement)}); err != nil {
				return err
			}
			return s.recordChange(client, tx, store.ChangeKey, id)
		}
		if maxActive < 0 || !keyrules.Capped(old, replacement.CreatedAt) {
			return commit(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
				if err := tx.Create(col.Doc(replacement.ID), encodeKey(replacement)); err != nil {
					return err
				}
				if err := replace(tx); err != nil {
					return err
				}
				return s.countNew(client, tx, store.Stored(replacement))
			})
		}
		return s.rotateCapped(ctx, client, old, replacement, maxActive, replace)
	})
	for _, answer := range []error{store.ErrKeyInactive, store.ErrKeyReplaced, store.ErrKeyLimitReached, store.ErrInvalidOwner} {
		if errors.Is(err, answer) {
			return store.Key{}, answer
		}
	}
	if err != nil {
		return store.Key{}, storeError("rotate key", err)
	}
	return old, nil
}

// successor reads the key that replaced the stored key k, if k names one
// and it exists: nil otherwise.
func (s *Store) successor(ctx context.Context, client *firestore.Client, k store.Key) (*store.Key, error) {
	if k.ReplacedBy == "" {
		return nil, nil
	}
	snap, err := client.Collection(s.collection).Doc(k.ReplacedBy).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	next, err := decodeKey(snap)
	return &next, err
}

func encodeKey(k store.Key) keyDoc {
	k = store.Stored(k)
	d := keyDoc{
		Owner:        k.Owner,
		Name:         k.Name,
		Scopes:       k.Scopes,
		Hint:         k.Hint,
		CreatedAt:    k.CreatedAt,
		RateLimit:    k.RateLimit,
		Burst:        k.Burst,
		MonthlyQuota: k.MonthlyQuota,
		ReplacedBy:   k.ReplacedBy,
		CreatedBy:    k.CreatedBy,
		LeakURL:      k.LeakURL,
	}
	if !k.ExpiresAt.IsZero() {
		d.ExpiresAt = &k.ExpiresAt
	}
	if !k.LeakedAt.IsZero() {
		d.LeakedAt = &k.LeakedAt
	}
	if !k.LastUsedAt.IsZero() {
		d.LastUsedAt = &k.LastUsedAt
	}
	if !k.RevokedAt.IsZero() {
		d.RevokedAt = &k.RevokedAt
	}
	return d
}

func decodeKey(snap *firestore.DocumentSnapshot) (store.Key, error) {
	var d keyDoc
	if err := snap.DataTo(&d); err != nil {
		return store.Key{}, fmt.Errorf("firestore: key document %s: %w", snap.Ref.ID, err)
	}
	k := store.Key{
		ID:           snap.Ref.ID,
		Owner:        d.Owner,
		Name:         d.Name,
		Scopes:       d.Scopes,
		Hint:         d.Hint,
		CreatedAt:    d.CreatedAt.UTC(),
		RateLimit:    d.RateLimit,
		Burst:        d.Burst,
		MonthlyQuota: d.MonthlyQuota,
		ReplacedBy:   d.ReplacedBy,
		CreatedBy:    d.CreatedBy,
		LeakURL:      d.LeakURL,
	}
	if d.LeakedAt != nil {
		k.LeakedAt = d.LeakedAt.UTC()
	}
	if d.LastUsedAt != nil {
		k.LastUsedAt = d.LastUsedAt.UTC()
	}
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if d.ExpiresAt != nil {
		k.ExpiresAt = d.ExpiresAt.UTC()
	}
	if d.RevokedAt != nil {
		k.RevokedAt = d.RevokedAt.UTC()
	}
	return k, nil
}

// Usage documents: api_keys/{id}/usage/{YYYY-MM-DD} and
// api_keys/{id}/usage/{YYYY-MM}, each {requests, day or month, updated_at};
// the same per owner, {KEYS_COLLECTION}_owners/{owner}/usage/{YYYY-MM-DD}
// and .../{YYYY-MM}, beside the owner's plan; and one document per metering
// instance, {KEYS_COLLECTION}_meters/{instance} {seq, updated_at,
// expires_at}, that makes AddUsage idempotent.
const (
	usageCollection = "usage"
	// meterDocLife is how long an instance's meter document is kept, for a
	// Firestore TTL policy on its expires_at field to delete.
	meterDocLife = 30 * 24 * time.Hour
	// maxTransactionWrites is Firestore's limit of writes in a transaction.
	maxTransactionWrites = 500
)

// A batch of store.MaxUsageBatch counts fits in one transaction.
var _ [maxTransactionWrites - (5*store.MaxUsageBatch + 1)]struct{}

// AddUsage implements UsageStore: one transaction that reads the instance's
// meter document, and unless it has applied seq already, reads the counts'
// key documents, increments the day and month documents of every count's key
// and (summed per owner and day or month) of its owner, moves each existing
// key's last_used_at forward (keyrules.LastUsed), and records seq. The key
// documents are read, not written blind, so that a deleted key is not
// brought back as a document with a last_used_at alone.
func (s *Store) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	if len(counts) > store.MaxUsageBatch {
		return fmt.Errorf("firestore: add usage: %d counts, more than %d", len(counts), store.MaxUsageBatch)
	}
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	keys, owners := client.Collection(s.collection), s.owners(client)
	meter := client.Collection(s.collection + "_meters").Doc(instance)
	ownerDays, ownerMonths := keyrules.OwnerTotals(counts)
	lastUsed := keyrules.LastUsedByKey(counts, time.Now())
	keyRefs := make([]*firestore.DocumentRef, 0, len(lastUsed))
	for id := range lastUsed {
		keyRefs = append(keyRefs, keys.Doc(id))
	}
	// A transaction that RunTransaction runs again, after its commit's
	// answer was lost, finds seq recorded and writes nothing.
	err = runIdempotent(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(meter)
		if err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		if snap != nil && snap.Exists() {
			applied, err := snap.DataAt("seq")
			if err != nil {
				return err
			}
			if n, ok := applied.(int64); ok && n >= seq {
				return nil
			}
		}
		keySnaps, err := tx.GetAll(keyRefs)
		if err != nil {
			return err
		}
		crossed, err := s.crossed(ctx, client, tx, counts)
		if err != nil {
			return err
		}
		for _, c := range counts {
			usage := keys.Doc(c.KeyID).Collection(usageCollection)
			if err := addDay(tx, usage, c.Day, c.Requests); err != nil {
				return err
			}
			if err := addMonth(tx, usage, c.Day.Month(), c.Requests); err != nil {
				return err
			}
		}
		for k, n := range ownerDays {
			if err := addDay(tx, owners.Doc(k.Owner).Collection(usageCollection), k.Day, n); err != nil {
				return err
			}
		}
		for k, n := range ownerMonths {
			if err := addMonth(tx, owners.Doc(k.Owner).Collection(usageCollection), k.Month, n); err != nil {
				return err
			}
		}
		for _, snap := range keySnaps {
			if err := touchKey(tx, snap, lastUsed[snap.Ref.ID]); err != nil {
				return err
			}
		}
		// Two writes a threshold, within the transaction's writes: one
		// left over waits for the next batch of its month.
		room := (maxTransactionWrites - (2*len(counts) + len(ownerDays) + len(ownerMonths) + len(keySnaps) + 1)) / 2
		for _, c := range crossed[:min(len(crossed), max(room, 0))] {
			if err := tx.Set(c.month, map[string]any{"thresholds": firestore.ArrayUnion(c.percent)}, firestore.MergeAll); err != nil {
				return err
			}
			if err := s.recordEvent(ctx, client, tx, store.Fact{Kind: store.FactThreshold, Threshold: c.Threshold}); err != nil {
				return err
			}
		}
		return tx.Set(meter, map[string]any{
			"seq": seq, "updated_at": firestore.ServerTimestamp, "expires_at": time.Now().Add(meterDocLife),
		})
	})
	return storeError("add usage", err)
}

// touchKey moves the last_used_at of the key document snap forward to at:
// not if the key is gone, nor if it records a later use already.
func touchKey(tx *firestore.Transaction, snap *firestore.DocumentSnapshot, at time.Time) error {
	if !snap.Exists() {
		return nil
	}
	if v, err := snap.DataAt("last_used_at"); err == nil {
		if prev, ok := v.(time.Time); ok && !at.After(prev) {
			return nil
		}
	}
	return tx.Update(snap.Ref, []firestore.Update{{Path: "last_used_at", Value: at}})
}

// addDay increments the day document of a usage collection by n.
func addDay(tx *firestore.Transaction, usage *firestore.CollectionRef, day store.Day, n int64) error {
	return tx.Set(usage.Doc(string(day)), map[string]any{
		"requests": firestore.Increment(n), "day": string(day), "updated_at": firestore.ServerTimestamp,
	}, firestore.MergeAll)
}

// addMonth increments the month document of a usage collection by n.
func addMonth(tx *firestore.Transaction, usage *firestore.CollectionRef, month store.Month, n int64) error {
	return tx.Set(usage.Doc(string(month)), map[string]any{
		"requests": firestore.Increment(n), "month": string(month), "updated_at": firestore.ServerTimestamp,
	}, firestore.MergeAll)
}

// DailyUsage implements UsageStore.
func (s *Store) DailyUsage(ctx context.Context, keyID string, from, to store.Day) ([]store.DayUsage, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	return readDays(ctx, client.Collection(s.collection).Doc(keyID).Collection(usageCollection), from, to)
}

// MonthlyUsage implements UsageStore.
func (s *Store) MonthlyUsage(ctx context.Context, keyID string, month store.Month) (int64, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return 0, err
	}
	return readMonth(ctx, client.Collection(s.collection).Doc(keyID).Collection(usageCollection), month)
}

// OwnerDailyUsage implements UsageStore.
func (s *Store) OwnerDailyUsage(ctx context.Context, owner string, from, to store.Day) ([]store.DayUsage, error) {
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return nil, err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	return readDays(ctx, s.owners(client).Doc(owner).Collection(usageCollection), from, to)
}

// OwnerMonthlyUsage implements UsageStore.
func (s *Store) OwnerMonthlyUsage(ctx context.Context, owner string, month store.Month) (int64, error) {
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return 0, err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return 0, err
	}
	return readMonth(ctx, s.owners(client).Doc(owner).Collection(usageCollection), month)
}

// readDays reads the day documents of a usage collection from from to to,
// oldest first: one query, which month documents (without a day) never
// match.
func readDays(ctx context.Context, usage *firestore.CollectionRef, from, to store.Day) ([]store.DayUsage, error) {
	snaps, err := usage.Where("day", ">=", string(from)).Where("day", "<=", string(to)).OrderBy("day", firestore.Asc).
		Documents(ctx).GetAll()
	if err != nil {
		return nil, storeError("read daily usage", err)
	}
	out := make([]store.DayUsage, 0, len(snaps))
	for _, snap := range snaps {
		var d struct {
			Day      string `firestore:"day"`
			Requests int64  `firestore:"requests"`
		}
		if err := snap.DataTo(&d); err != nil {
			return nil, fmt.Errorf("firestore: usage document %s: %w", snap.Ref.Path, err)
		}
		out = append(out, store.DayUsage{Day: store.Day(d.Day), Requests: d.Requests})
	}
	return out, nil
}

// readMonth reads the total of a month document of a usage collection; 0 if
// there is none.
func readMonth(ctx context.Context, usage *firestore.CollectionRef, month store.Month) (int64, error) {
	snap, err := usage.Doc(string(month)).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return 0, nil
	}
	if err != nil {
		return 0, storeError("read monthly usage", err)
	}
	return usageTotal(snap)
}

// usageTotal is the requests of a month's usage document; 0 if it does not
// exist.
func usageTotal(snap *firestore.DocumentSnapshot) (int64, error) {
	if !snap.Exists() {
		return 0, nil
	}
	n, err := snap.DataAt("requests")
	if err != nil {
		return 0, fmt.Errorf("firestore: usage document %s: %w", snap.Ref.Path, err)
	}
	total, _ := n.(int64)
	return total, nil
}

// Plans: one document per owner, {KEYS_COLLECTION}_owners/{owner}, and under
// it the owner's key count, {KEYS_COLLECTION}_owners/{owner}/guards/keys
// (keycount.go).
const ownersSuffix = "_owners"

// planDoc is the Firestore document of a plan. Every field is written; 0
// (or absent, in a document written by other means) means the default.
type planDoc struct {
	RateLimit    float64   `firestore:"rate_limit"`
	Burst        int       `firestore:"burst"`
	MonthlyQuota int64     `firestore:"monthly_quota"`
	MaxKeys      int       `firestore:"max_keys"`
	Mints        float64   `firestore:"mint_rate,omitempty"`
	MintsBurst   int       `firestore:"mint_burst,omitempty"`
	Stripe       string    `firestore:"stripe_customer,omitempty"`
	UpdatedAt    time.Time `firestore:"updated_at"`
}

// owners returns the collection of plans.
func (s *Store) owners(client *firestore.Client) *firestore.CollectionRef {
	return client.Collection(s.collection + ownersSuffix)
}

// GetPlan implements PlanStore.
func (s *Store) GetPlan(ctx context.Context, owner string) (store.Plan, error) {
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return store.Plan{}, err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return store.Plan{}, err
	}
	snap, err := s.owners(client).Doc(owner).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return store.Plan{}, store.ErrPlanNotFound
	}
	if err != nil {
		return store.Plan{}, storeError("get plan", err)
	}
	return decodePlan(owner, snap)
}

// decodePlan decodes the plan document snap of owner.
func decodePlan(owner string, snap *firestore.DocumentSnapshot) (store.Plan, error) {
	var d planDoc
	if err := snap.DataTo(&d); err != nil {
		return store.Plan{}, fmt.Errorf("firestore: plan document %s: %w", snap.Ref.ID, err)
	}
	return store.Plan{Owner: owner, RateLimit: d.RateLimit, Burst: d.Burst, MonthlyQuota: d.MonthlyQuota,
		MaxKeys: d.MaxKeys, MintRate: d.Mints, MintBurst: d.MintsBurst, StripeCustomer: d.Stripe, UpdatedAt: d.UpdatedAt.UTC()}, nil
}

// ReadOwner implements OwnerReader: the plan document and the month's
// usage document in one batched get.
func (s *Store) ReadOwner(ctx context.Context, owner string, month store.Month) (store.Plan, bool, int64, error) {
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return store.Plan{}, false, 0, err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return store.Plan{}, false, 0, err
	}
	doc := s.owners(client).Doc(owner)
	snaps, err := client.GetAll(ctx, []*firestore.DocumentRef{doc, doc.Collection(usageCollection).Doc(string(month))})
	if err != nil {
		return store.Plan{}, false, 0, storeError("read owner", err)
	}
	p := store.Plan{Owner: owner}
	if snaps[0].Exists() {
		if p, err = decodePlan(owner, snaps[0]); err != nil {
			return store.Plan{}, false, 0, err
		}
	}
	total, err := usageTotal(snaps[1])
	return p, snaps[0].Exists(), total, err
}

// SetPlan implements PlanStore: it replaces the whole document, in a
// transaction with the change's record.
func (s *Store) SetPlan(ctx context.Context, p store.Plan) error {
	if err := keyrules.ValidatePlan(p); err != nil {
		return fmt.Errorf("%w: %w", store.ErrInvalidPlan, err)
	}
	p = store.StoredPlan(p)
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	doc := planDoc{RateLimit: p.RateLimit, Burst: p.Burst, MonthlyQuota: p.MonthlyQuota, MaxKeys: p.MaxKeys,
		Mints: p.MintRate, MintsBurst: p.MintBurst, Stripe: p.StripeCustomer, UpdatedAt: p.UpdatedAt}
	err = runRetried(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
		if err := tx.Set(s.owners(client).Doc(p.Owner), doc); err != nil {
			return err
		}
		if err := s.recordEvent(ctx, client, tx, store.Fact{Kind: store.FactPlan, Owner: p.Owner, Plan: &p}); err != nil {
			return err
		}
		return s.recordChange(client, tx, store.ChangeOwner, p.Owner)
	})
	return storeError("set plan", err)
}

// DeletePlan implements PlanStore, in a transaction with the change's
// record. The owner's key count stays: it is no limit.
func (s *Store) DeletePlan(ctx context.Context, owner string) error {
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	err = runRetried(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
		if err := tx.Delete(s.owners(client).Doc(owner), firestore.Exists); err != nil {
			return err
		}
		if err := s.recordEvent(ctx, client, tx, store.Fact{Kind: store.FactPlan, Owner: owner}); err != nil {
			return err
		}
		return s.recordChange(client, tx, store.ChangeOwner, owner)
	})
	if status.Code(err) == codes.NotFound {
		return store.ErrPlanNotFound
	}
	return storeError("delete plan", err)
}
