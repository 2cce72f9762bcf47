package keygate

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a KeyStore in process memory, for the local runner and
// tests. The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu   sync.Mutex
	keys map[string]Key
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{keys: make(map[string]Key)}
}

// Get implements KeyStore.
func (s *MemoryStore) Get(ctx context.Context, id string) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	return cloneKey(k), nil
}

// Create implements KeyStore.
func (s *MemoryStore) Create(ctx context.Context, k Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return ErrKeyExists
	}
	s.keys[k.ID] = storedKey(k)
	return nil
}

// ListByOwner implements KeyStore.
func (s *MemoryStore) ListByOwner(ctx context.Context, owner string) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	var out []Key
	for _, k := range s.keys {
		if k.Owner == owner {
			out = append(out, cloneKey(k))
		}
	}
	s.mu.Unlock()
	sortNewestFirst(out)
	return out, nil
}

// Revoke implements KeyStore.
func (s *MemoryStore) Revoke(ctx context.Context, id string, at time.Time) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	if k.RevokedAt.IsZero() {
		k.RevokedAt = storedTime(at)
		s.keys[id] = k
	}
	return cloneKey(k), nil
}

// Delete implements KeyStore.
func (s *MemoryStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[id]; !ok {
		return ErrKeyNotFound
	}
	delete(s.keys, id)
	return nil
}

// Rotate implements KeyStore.
func (s *MemoryStore) Rotate(ctx context.Context, id string, replacement Key, graceEnd time.Time) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.keys[id]
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	if _, ok := s.keys[replacement.ID]; ok {
		return Key{}, ErrKeyExists
	}
	old, err := rotated(old, graceEnd, replacement.CreatedAt)
	if err != nil {
		return Key{}, err
	}
	s.keys[id] = old
	s.keys[replacement.ID] = storedKey(replacement)
	return cloneKey(old), nil
}

// cloneKey copies k so that callers never share its Scopes slice.
func cloneKey(k Key) Key {
	k.Scopes = slices.Clone(k.Scopes)
	return k
}

// sortNewestFirst orders keys by CreatedAt, newest first, then by ID.
func sortNewestFirst(keys []Key) {
	slices.SortFunc(keys, func(a, b Key) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
