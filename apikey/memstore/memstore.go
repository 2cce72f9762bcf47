package memstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// Store is a store.Store in process memory, for the local runner and
// tests. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	keys    map[string]store.Key
	plans   map[string]store.Plan
	usage   memUsage
	changes changeLog
	outbox  outbox
	billing billing
}

// New returns an empty Store.
func New() *Store {
	return &Store{keys: make(map[string]store.Key), plans: make(map[string]store.Plan)}
}

// CreateCapped implements KeyStore: it counts and creates under the store's
// lock.
func (s *Store) CreateCapped(ctx context.Context, k store.Key, maxActive int, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := keyrules.CheckPlanOwner(k.Owner); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return store.ErrKeyExists
	}
	if s.active(k.Owner, now) >= maxActive {
		return store.ErrKeyLimitReached
	}
	s.keys[k.ID] = store.Stored(k)
	s.record(ctx, store.Fact{Kind: store.FactCreated, Key: store.Stored(k)})
	return nil
}

// active counts the keys of owner active at now; s.mu is held.
func (s *Store) active(owner string, now time.Time) int {
	n := 0
	for _, k := range s.keys {
		if k.Owner == owner && k.Status(now) == store.StatusActive {
			n++
		}
	}
	return n
}

// GetPlan implements PlanStore.
func (s *Store) GetPlan(ctx context.Context, owner string) (store.Plan, error) {
	if err := ctx.Err(); err != nil {
		return store.Plan{}, err
	}
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return store.Plan{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.plans[owner]
	if !ok {
		return store.Plan{}, store.ErrPlanNotFound
	}
	return p, nil
}

// SetPlan implements PlanStore.
func (s *Store) SetPlan(ctx context.Context, p store.Plan) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := keyrules.ValidatePlan(p); err != nil {
		return fmt.Errorf("%w: %w", store.ErrInvalidPlan, err)
	}
	p = store.StoredPlan(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plans[p.Owner] = p
	s.logChange(store.ChangeOwner, p.Owner)
	s.record(ctx, store.Fact{Kind: store.FactPlan, Owner: p.Owner, Plan: &p})
	return nil
}

// DeletePlan implements PlanStore.
func (s *Store) DeletePlan(ctx context.Context, owner string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return err
	}
	return remove(s, s.plans, owner, store.ErrPlanNotFound, store.ChangeOwner, func(store.Plan) {
		s.record(ctx, store.Fact{Kind: store.FactPlan, Owner: owner})
	})
}

// Get implements KeyStore.
func (s *Store) Get(ctx context.Context, id string) (store.Key, error) {
	return s.updateKey(ctx, id, nil)
}

// updateKey passes the key id to change, if not nil, under the lock, keeps
// it if change reports a change, and answers a copy of the key as it is
// after: the read, or read-modify-write, of one key.
func (s *Store) updateKey(ctx context.Context, id string, change func(k *store.Key) bool) (store.Key, error) {
	if err := ctx.Err(); err != nil {
		return store.Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return store.Key{}, store.ErrKeyNotFound
	}
	if change != nil && change(&k) {
		s.keys[id] = k
	}
	return cloneKey(k), nil
}

// ReadKey implements KeyReader.
func (s *Store) ReadKey(ctx context.Context, id string, month store.Month) (store.Key, int64, error) {
	k, err := s.Get(ctx, id)
	if err != nil {
		return store.Key{}, 0, err
	}
	total, err := s.MonthlyUsage(ctx, id, month)
	return k, total, err
}

// Create implements KeyStore.
func (s *Store) Create(ctx context.Context, k store.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return store.ErrKeyExists
	}
	s.keys[k.ID] = store.Stored(k)
	s.record(ctx, store.Fact{Kind: store.FactCreated, Key: store.Stored(k)})
	return nil
}

// ListByOwner implements KeyStore.
func (s *Store) ListByOwner(ctx context.Context, owner string, after *store.PagePosition, limit int) (store.KeyPage, error) {
	if err := ctx.Err(); err != nil {
		return store.KeyPage{}, err
	}
	if err := keyrules.CheckPageLimit(limit); err != nil {
		return store.KeyPage{}, err
	}
	s.mu.Lock()
	var keys []store.Key
	for _, k := range s.keys {
		if k.Owner == owner && (after == nil || after.Compare(keyrules.PositionOf(k)) < 0) {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(keys, keyrules.ListOrder)
	keys = keys[:min(len(keys), limit+1)]
	for i := range keys {
		keys[i] = cloneKey(keys[i])
	}
	return keyrules.PageOf(keys, limit), nil
}

// Revoke implements KeyStore.
func (s *Store) Revoke(ctx context.Context, id string, at time.Time) (store.Key, error) {
	return s.updateKey(ctx, id, func(k *store.Key) bool {
		if !k.RevokedAt.IsZero() {
			return false // the first revocation time is kept
		}
		k.RevokedAt = store.StoredTime(at)
		s.logChange(store.ChangeKey, id)
		s.record(ctx, store.Fact{Kind: store.FactRevoked, Key: cloneKey(*k)})
		return true
	})
}

// Delete implements KeyStore.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return remove(s, s.keys, id, store.ErrKeyNotFound, store.ChangeKey, func(k store.Key) {
		delete(s.outbox.notices, id)
		s.record(ctx, store.Fact{Kind: store.FactDeleted, Key: cloneKey(k)})
	})
}

// remove deletes m[id] under the lock, logs the change and passes what it
// deleted to record, or answers notFound.
func remove[V any](s *Store, m map[string]V, id string, notFound error, kind store.ChangeKind, record func(V)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := m[id]
	if !ok {
		return notFound
	}
	delete(m, id)
	s.logChange(kind, id)
	record(v)
	return nil
}

// Rotate implements KeyStore.
func (s *Store) Rotate(ctx context.Context, id string, replacement store.Key, graceEnd time.Time) (store.Key, error) {
	return s.rotate(ctx, id, replacement, graceEnd, -1)
}

// RotateCapped implements KeyStore: it counts and rotates under the store's
// lock.
func (s *Store) RotateCapped(ctx context.Context, id string, replacement store.Key, graceEnd time.Time, maxActive int) (store.Key, error) {
	return s.rotate(ctx, id, replacement, graceEnd, max(maxActive, 0)) // a negative cap is no key, not none
}

// rotate is Rotate, and with maxActive ≥ 0 RotateCapped.
func (s *Store) rotate(ctx context.Context, id string, replacement store.Key, graceEnd time.Time, maxActive int) (store.Key, error) {
	if err := ctx.Err(); err != nil {
		return store.Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.keys[id]
	if !ok {
		return store.Key{}, store.ErrKeyNotFound
	}
	if _, ok := s.keys[replacement.ID]; ok {
		return store.Key{}, store.ErrKeyExists
	}
	var successor *store.Key
	if k, ok := s.keys[old.ReplacedBy]; ok && old.ReplacedBy != "" {
		successor = &k
	}
	old, err := keyrules.Rotated(old, successor, replacement, graceEnd)
	if err != nil {
		return store.Key{}, err
	}
	if maxActive >= 0 && keyrules.Capped(old, replacement.CreatedAt) {
		if err := keyrules.CheckPlanOwner(old.Owner); err != nil {
			return store.Key{}, err
		}
		if keyrules.OverCap(s.active(old.Owner, replacement.CreatedAt), maxActive) {
			return store.Key{}, store.ErrKeyLimitReached
		}
	}
	s.keys[id] = old
	s.keys[replacement.ID] = store.Stored(replacement)
	s.logChange(store.ChangeKey, id)
	s.record(ctx, store.Fact{Kind: store.FactRotated, Key: cloneKey(old), Replacement: store.Stored(replacement)})
	return cloneKey(old), nil
}

// cloneKey copies k so that callers never share its Scopes slice.
func cloneKey(k store.Key) store.Key {
	k.Scopes = slices.Clone(k.Scopes)
	return k
}

// memUsage is the usage part of a Store.
type memUsage struct {
	days        map[string]map[store.Day]int64   // key ID -> day -> requests
	months      map[string]map[store.Month]int64 // key ID -> month -> requests
	ownerDays   map[keyrules.OwnerDay]int64
	ownerMonths map[keyrules.OwnerMonth]int64
	applied     map[string]int64 // instance -> last batch applied
	// reported are the quota thresholds recorded, per key or owner month.
	reported map[keyrules.QuotaMonth][]int
}

// thresholds records the quota thresholds that counts reach, before they
// are added; s.mu is held.
func (s *Store) thresholds(ctx context.Context, counts []store.UsageCount) {
	u := &s.usage
	if u.reported == nil {
		u.reported = map[keyrules.QuotaMonth][]int{}
	}
	for _, q := range keyrules.QuotaMonths(counts) {
		before := u.ownerMonths[keyrules.OwnerMonth{Owner: q.Owner, Month: q.Month}]
		if q.KeyID != "" {
			before = u.months[q.KeyID][q.Month]
		}
		id := keyrules.QuotaMonth{Owner: q.Owner, KeyID: q.KeyID, Month: q.Month}
		for _, t := range keyrules.Crossed(q, before, u.reported[id]) {
			u.reported[id] = append(u.reported[id], t.Percent)
			s.record(ctx, store.Fact{Kind: store.FactThreshold, Threshold: t})
		}
	}
}

// AddUsage implements UsageStore.
func (s *Store) AddUsage(ctx context.Context, instance string, seq int64, counts []store.UsageCount) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &s.usage
	if u.days == nil {
		u.days, u.months, u.applied = map[string]map[store.Day]int64{}, map[string]map[store.Month]int64{}, map[string]int64{}
		u.ownerDays, u.ownerMonths = map[keyrules.OwnerDay]int64{}, map[keyrules.OwnerMonth]int64{}
	}
	if u.applied[instance] >= seq {
		return nil
	}
	if store.Recording(ctx) {
		s.thresholds(ctx, counts)
	}
	for _, c := range counts {
		if u.days[c.KeyID] == nil {
			u.days[c.KeyID], u.months[c.KeyID] = map[store.Day]int64{}, map[store.Month]int64{}
		}
		u.days[c.KeyID][c.Day] += c.Requests
		u.months[c.KeyID][c.Day.Month()] += c.Requests
	}
	for id, at := range keyrules.LastUsedByKey(counts, time.Now()) {
		if k, ok := s.keys[id]; ok && at.After(k.LastUsedAt) {
			k.LastUsedAt = at
			s.keys[id] = k
		}
	}
	days, months := keyrules.OwnerTotals(counts)
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
func (s *Store) DailyUsage(ctx context.Context, keyID string, from, to store.Day) ([]store.DayUsage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []store.DayUsage{}
	for day, n := range s.usage.days[keyID] {
		if day >= from && day <= to {
			out = append(out, store.DayUsage{Day: day, Requests: n})
		}
	}
	slices.SortFunc(out, func(a, b store.DayUsage) int { return cmp.Compare(a.Day, b.Day) })
	return out, nil
}

// MonthlyUsage implements UsageStore.
func (s *Store) MonthlyUsage(ctx context.Context, keyID string, month store.Month) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage.months[keyID][month], nil
}

// OwnerDailyUsage implements UsageStore.
func (s *Store) OwnerDailyUsage(ctx context.Context, owner string, from, to store.Day) ([]store.DayUsage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []store.DayUsage{}
	for k, n := range s.usage.ownerDays {
		if k.Owner == owner && k.Day >= from && k.Day <= to {
			out = append(out, store.DayUsage{Day: k.Day, Requests: n})
		}
	}
	slices.SortFunc(out, func(a, b store.DayUsage) int { return cmp.Compare(a.Day, b.Day) })
	return out, nil
}

// ReadOwner implements OwnerReader.
func (s *Store) ReadOwner(ctx context.Context, owner string, month store.Month) (store.Plan, bool, int64, error) {
	p, err := s.GetPlan(ctx, owner)
	found := err == nil
	if errors.Is(err, store.ErrPlanNotFound) {
		p, err = store.Plan{Owner: owner}, nil
	}
	if err != nil {
		return store.Plan{}, false, 0, err
	}
	total, err := s.OwnerMonthlyUsage(ctx, owner, month)
	return p, found, total, err
}

// OwnerMonthlyUsage implements UsageStore.
func (s *Store) OwnerMonthlyUsage(ctx context.Context, owner string, month store.Month) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage.ownerMonths[keyrules.OwnerMonth{Owner: owner, Month: month}], nil
}

// GetMany implements LeakStore.
func (s *Store) GetMany(ctx context.Context, ids []string) ([]store.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := keyrules.CheckGetMany(ids); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []store.Key{}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if k, ok := s.keys[id]; ok && !seen[id] {
			seen[id] = true
			keys = append(keys, cloneKey(k))
		}
	}
	return keys, nil
}

// RecordLeak implements LeakStore.
func (s *Store) RecordLeak(ctx context.Context, id string, at time.Time, url string) (store.Key, error) {
	return s.updateKey(ctx, id, func(k *store.Key) bool {
		if !k.LeakedAt.IsZero() {
			return false // the first leak is kept
		}
		k.LeakedAt, k.LeakURL = store.StoredTime(at), url
		s.record(ctx, store.Fact{Kind: store.FactLeaked, Key: cloneKey(*k)})
		return true
	})
}
