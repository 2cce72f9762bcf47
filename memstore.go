package keygate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a KeyStore and UsageStore in process memory, for the local runner and
// tests. The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu    sync.Mutex
	keys  map[string]Key
	plans map[string]Plan
	usage memUsage
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{keys: make(map[string]Key), plans: make(map[string]Plan)}
}

// CreateCapped implements KeyStore: it counts and creates under the store's
// lock.
func (s *MemoryStore) CreateCapped(ctx context.Context, k Key, maxActive int, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkPlanOwner(k.Owner); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return ErrKeyExists
	}
	n := 0
	for _, other := range s.keys {
		if other.Owner == k.Owner && other.Status(now) == "active" {
			n++
		}
	}
	if n >= maxActive {
		return ErrKeyLimitReached
	}
	s.keys[k.ID] = storedKey(k)
	return nil
}

// GetPlan implements PlanStore.
func (s *MemoryStore) GetPlan(ctx context.Context, owner string) (Plan, error) {
	if err := ctx.Err(); err != nil {
		return Plan{}, err
	}
	if err := checkPlanOwner(owner); err != nil {
		return Plan{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.plans[owner]
	if !ok {
		return Plan{}, ErrPlanNotFound
	}
	return p, nil
}

// SetPlan implements PlanStore.
func (s *MemoryStore) SetPlan(ctx context.Context, p Plan) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidatePlan(p); err != nil {
		return err
	}
	p = storedPlan(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plans[p.Owner] = p
	return nil
}

// DeletePlan implements PlanStore.
func (s *MemoryStore) DeletePlan(ctx context.Context, owner string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkPlanOwner(owner); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.plans[owner]; !ok {
		return ErrPlanNotFound
	}
	delete(s.plans, owner)
	return nil
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

// ReadKey implements KeyReader.
func (s *MemoryStore) ReadKey(ctx context.Context, id string, month Month) (Key, int64, error) {
	k, err := s.Get(ctx, id)
	if err != nil {
		return Key{}, 0, err
	}
	total, err := s.MonthlyUsage(ctx, id, month)
	return k, total, err
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
func (s *MemoryStore) ListByOwner(ctx context.Context, owner string, after *PagePosition, limit int) (KeyPage, error) {
	if err := ctx.Err(); err != nil {
		return KeyPage{}, err
	}
	if err := checkPageLimit(limit); err != nil {
		return KeyPage{}, err
	}
	s.mu.Lock()
	var keys []Key
	for _, k := range s.keys {
		if k.Owner == owner && (after == nil || after.compare(PositionOf(k)) < 0) {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(keys, ListOrder)
	keys = keys[:min(len(keys), limit+1)]
	for i := range keys {
		keys[i] = cloneKey(keys[i])
	}
	return pageOf(keys, limit), nil
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
		k.RevokedAt = StoredTime(at)
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

// memUsage is the usage part of a MemoryStore.
type memUsage struct {
	days        map[string]map[Day]int64   // key ID -> day -> requests
	months      map[string]map[Month]int64 // key ID -> month -> requests
	ownerDays   map[ownerDay]int64
	ownerMonths map[ownerMonth]int64
	applied     map[string]int64 // instance -> last batch applied
}

// AddUsage implements UsageStore.
func (s *MemoryStore) AddUsage(ctx context.Context, instance string, seq int64, counts []UsageCount) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUsageNotApplied, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &s.usage
	if u.days == nil {
		u.days, u.months, u.applied = map[string]map[Day]int64{}, map[string]map[Month]int64{}, map[string]int64{}
		u.ownerDays, u.ownerMonths = map[ownerDay]int64{}, map[ownerMonth]int64{}
	}
	if u.applied[instance] >= seq {
		return nil
	}
	for _, c := range counts {
		if u.days[c.KeyID] == nil {
			u.days[c.KeyID], u.months[c.KeyID] = map[Day]int64{}, map[Month]int64{}
		}
		u.days[c.KeyID][c.Day] += c.Requests
		u.months[c.KeyID][c.Day.Month()] += c.Requests
	}
	days, months := ownerTotals(counts)
	for k, n := range days {
		u.ownerDays[k] += n
	}
	for k, n := range months {
		u.ownerMonths[k] += n
	}
	u.applied[instance] = seq
	return nil
}

// DailyUsage implements UsageStore.
func (s *MemoryStore) DailyUsage(ctx context.Context, keyID string, from, to Day) ([]DayUsage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []DayUsage{}
	for day, n := range s.usage.days[keyID] {
		if day >= from && day <= to {
			out = append(out, DayUsage{day, n})
		}
	}
	slices.SortFunc(out, func(a, b DayUsage) int { return cmp.Compare(a.Day, b.Day) })
	return out, nil
}

// MonthlyUsage implements UsageStore.
func (s *MemoryStore) MonthlyUsage(ctx context.Context, keyID string, month Month) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage.months[keyID][month], nil
}

// OwnerDailyUsage implements UsageStore.
func (s *MemoryStore) OwnerDailyUsage(ctx context.Context, owner string, from, to Day) ([]DayUsage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkPlanOwner(owner); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []DayUsage{}
	for k, n := range s.usage.ownerDays {
		if k.owner == owner && k.day >= from && k.day <= to {
			out = append(out, DayUsage{k.day, n})
		}
	}
	slices.SortFunc(out, func(a, b DayUsage) int { return cmp.Compare(a.Day, b.Day) })
	return out, nil
}

// ReadOwner implements OwnerReader.
func (s *MemoryStore) ReadOwner(ctx context.Context, owner string, month Month) (Plan, bool, int64, error) {
	p, err := s.GetPlan(ctx, owner)
	found := err == nil
	if errors.Is(err, ErrPlanNotFound) {
		p, err = Plan{Owner: owner}, nil
	}
	if err != nil {
		return Plan{}, false, 0, err
	}
	total, err := s.OwnerMonthlyUsage(ctx, owner, month)
	return p, found, total, err
}

// OwnerMonthlyUsage implements UsageStore.
func (s *MemoryStore) OwnerMonthlyUsage(ctx context.Context, owner string, month Month) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkPlanOwner(owner); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage.ownerMonths[ownerMonth{owner, month}], nil
}
