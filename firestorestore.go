package keygate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FirestoreStore is a KeyStore in a Firestore collection: one document per
// key, whose ID is the key ID. The README documents the fields.
//
// Its client is created on first use and kept for the life of the process;
// a failed creation is retried by the next call.
type FirestoreStore struct {
	project    string
	database   string
	collection string
	timeout    time.Duration

	mu     sync.Mutex
	client *firestore.Client
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
}

// NewFirestoreStore returns a store on cfg's project, database and
// collection, with cfg.StoreTimeout as the deadline of every call. It does
// not connect: the client is created by the first call.
func NewFirestoreStore(cfg Config) *FirestoreStore {
	return &FirestoreStore{
		project:    cfg.Project,
		database:   cfg.Database,
		collection: cfg.Collection,
		timeout:    cfg.StoreTimeout,
	}
}

// Client returns the store's Firestore client, creating it if need be.
func (s *FirestoreStore) Client(ctx context.Context) (*firestore.Client, error) {
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
		return nil, fmt.Errorf("creating Firestore client: %w", err)
	}
	s.client = c
	return c, nil
}

// Close closes the client, if one was created.
func (s *FirestoreStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}

// begin bounds ctx by the store timeout and returns the client.
func (s *FirestoreStore) begin(ctx context.Context) (context.Context, context.CancelFunc, *firestore.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	c, err := s.Client(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, cancel, c, nil
}

// Get implements KeyStore.
func (s *FirestoreStore) Get(ctx context.Context, id string) (Key, error) {
	ctx, cancel, client, err := s.begin(ctx)
	if err != nil {
		return Key{}, err
	}
	defer cancel()
	snap, err := client.Collection(s.collection).Doc(id).Get(ctx)
	if err != nil {
		return Key{}, storeError("get key", err)
	}
	return decodeKey(snap)
}

// Create implements KeyStore.
func (s *FirestoreStore) Create(ctx context.Context, k Key) error {
	ctx, cancel, client, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = client.Collection(s.collection).Doc(k.ID).Create(ctx, encodeKey(k))
	return storeError("create key", err)
}

// ListByOwner implements KeyStore. It sorts in memory, so the collection
// needs no composite index.
func (s *FirestoreStore) ListByOwner(ctx context.Context, owner string) ([]Key, error) {
	ctx, cancel, client, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	snaps, err := client.Collection(s.collection).Where("owner", "==", owner).Documents(ctx).GetAll()
	if err != nil {
		return nil, storeError("list keys", err)
	}
	keys := make([]Key, 0, len(snaps))
	for _, snap := range snaps {
		k, err := decodeKey(snap)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sortNewestFirst(keys)
	return keys, nil
}

// Revoke implements KeyStore, in a transaction so that the first revocation
// time is kept.
func (s *FirestoreStore) Revoke(ctx context.Context, id string, at time.Time) (Key, error) {
	ctx, cancel, client, err := s.begin(ctx)
	if err != nil {
		return Key{}, err
	}
	defer cancel()
	ref := client.Collection(s.collection).Doc(id)
	var k Key
	err = client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		if k, err = decodeKey(snap); err != nil {
			return err
		}
		if !k.RevokedAt.IsZero() {
			return nil
		}
		k.RevokedAt = storedTime(at)
		return tx.Update(ref, []firestore.Update{{Path: "revoked_at", Value: k.RevokedAt}})
	})
	if err != nil {
		return Key{}, storeError("revoke key", err)
	}
	return k, nil
}

// Delete implements KeyStore.
func (s *FirestoreStore) Delete(ctx context.Context, id string) error {
	ctx, cancel, client, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = client.Collection(s.collection).Doc(id).Delete(ctx, firestore.Exists)
	return storeError("delete key", err)
}

// Rotate implements KeyStore, in one transaction.
func (s *FirestoreStore) Rotate(ctx context.Context, id string, replacement Key, graceEnd time.Time) (Key, error) {
	ctx, cancel, client, err := s.begin(ctx)
	if err != nil {
		return Key{}, err
	}
	defer cancel()
	col := client.Collection(s.collection)
	var old Key
	err = client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(col.Doc(id))
		if err != nil {
			return err
		}
		if old, err = decodeKey(snap); err != nil {
			return err
		}
		if old, err = rotated(old, graceEnd, replacement.CreatedAt); err != nil {
			return err
		}
		if err := tx.Create(col.Doc(replacement.ID), encodeKey(replacement)); err != nil {
			return err
		}
		return tx.Update(col.Doc(id), []firestore.Update{{Path: "expires_at", Value: old.ExpiresAt}})
	})
	if errors.Is(err, ErrKeyInactive) {
		return Key{}, ErrKeyInactive
	}
	if err != nil {
		return Key{}, storeError("rotate key", err)
	}
	return old, nil
}

// storeError maps Firestore's NotFound and AlreadyExists to ErrKeyNotFound and
// ErrKeyExists, and wraps anything else with what was being done.
func storeError(op string, err error) error {
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.NotFound:
		return ErrKeyNotFound
	case codes.AlreadyExists:
		return ErrKeyExists
	}
	if errors.Is(err, ErrKeyNotFound) {
		return ErrKeyNotFound
	}
	return fmt.Errorf("firestore: %s: %w", op, err)
}

func encodeKey(k Key) keyDoc {
	k = storedKey(k)
	d := keyDoc{
		Owner:        k.Owner,
		Name:         k.Name,
		Scopes:       k.Scopes,
		Hint:         k.Hint,
		CreatedAt:    k.CreatedAt,
		RateLimit:    k.RateLimit,
		Burst:        k.Burst,
		MonthlyQuota: k.MonthlyQuota,
	}
	if !k.ExpiresAt.IsZero() {
		d.ExpiresAt = &k.ExpiresAt
	}
	if !k.RevokedAt.IsZero() {
		d.RevokedAt = &k.RevokedAt
	}
	return d
}

func decodeKey(snap *firestore.DocumentSnapshot) (Key, error) {
	var d keyDoc
	if err := snap.DataTo(&d); err != nil {
		return Key{}, fmt.Errorf("firestore: key document %s: %w", snap.Ref.ID, err)
	}
	k := Key{
		ID:           snap.Ref.ID,
		Owner:        d.Owner,
		Name:         d.Name,
		Scopes:       d.Scopes,
		Hint:         d.Hint,
		CreatedAt:    d.CreatedAt.UTC(),
		RateLimit:    d.RateLimit,
		Burst:        d.Burst,
		MonthlyQuota: d.MonthlyQuota,
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
