package memstore

import (
	"cmp"
	"context"
	"slices"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// exportKey names an owner's day in the export records.
type exportKey struct {
	owner string
	day   store.Day
}

// billing is the Store's export records and refusals.
type billing struct {
	days    map[exportKey]store.DayExport
	refused map[string]store.BillingRefusal
	cursor  string
}

// Exported implements BillingStore.
func (s *Store) Exported(ctx context.Context, owner string, from, to store.Day) ([]store.DayExport, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []store.DayExport{}
	for k, d := range s.billing.days {
		if k.owner == owner && k.day >= from && k.day <= to {
			if d.Pending != nil {
				a := *d.Pending
				d.Pending = &a
			}
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b store.DayExport) int { return cmp.Compare(a.Day, b.Day) })
	return out, nil
}

// BeginExport implements BillingStore.
func (s *Store) BeginExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	return s.moveExport(ctx, owner, day, a, func(d *store.DayExport) bool {
		if d.Exported != a.From || d.Pending != nil {
			return false
		}
		a.Timestamp, a.Sent = store.StoredTime(a.Timestamp), store.StoredTime(a.Sent)
		d.Pending = &a
		return true
	})
}

// AdvanceExport implements BillingStore.
func (s *Store) AdvanceExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	return s.moveExport(ctx, owner, day, a, func(d *store.DayExport) bool {
		if d.Exported != a.From || d.Pending == nil || d.Pending.Identifier != a.Identifier || d.Pending.To != a.To {
			return false
		}
		d.Exported, d.Pending = a.To, nil
		return true
	})
}

// AbandonExport implements BillingStore.
func (s *Store) AbandonExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	return s.moveExport(ctx, owner, day, a, func(d *store.DayExport) bool {
		if d.Exported != a.From || d.Pending == nil || d.Pending.Identifier != a.Identifier || d.Pending.To != a.To {
			return false
		}
		d.Pending = nil
		return true
	})
}

// ExportCursor implements BillingStore.
func (s *Store) ExportCursor(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.billing.cursor, nil
}

// SetExportCursor implements BillingStore.
func (s *Store) SetExportCursor(ctx context.Context, after string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.billing.cursor = after
	return nil
}

// moveExport applies move to the day's record under the lock, or returns
// ErrExportMoved when move refuses.
func (s *Store) moveExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt, move func(*store.DayExport) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := keyrules.CheckExport(owner, day, a); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.billing.days == nil {
		s.billing.days = make(map[exportKey]store.DayExport)
	}
	k := exportKey{owner, day}
	d, ok := s.billing.days[k]
	if !ok {
		d = store.DayExport{Day: day}
	}
	if !move(&d) {
		return store.ErrExportMoved
	}
	s.billing.days[k] = d
	return nil
}

// LinkedOwners implements BillingStore: it sorts the plans, which is fine
// for the store of tests and demos.
func (s *Store) LinkedOwners(ctx context.Context, after string, limit int) ([]store.Plan, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	limit = min(max(limit, 1), keyrules.MaxLinkedPage)
	pos := keyrules.ParseLinkedAfter(after)
	s.mu.Lock()
	var linked []store.Plan
	for _, p := range s.plans {
		if p.StripeCustomer != "" && !pos.Before(p) {
			linked = append(linked, p)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(linked, func(a, b store.Plan) int {
		return cmp.Or(cmp.Compare(a.StripeCustomer, b.StripeCustomer), cmp.Compare(a.Owner, b.Owner))
	})
	if len(linked) <= limit {
		return linked, "", nil
	}
	linked = linked[:limit]
	return linked, keyrules.LinkedNext(linked[limit-1]), nil
}

// RefuseBilling implements BillingStore.
func (s *Store) RefuseBilling(ctx context.Context, owner string, r store.BillingRefusal) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return err
	}
	r.PlanUpdatedAt, r.At = store.StoredTime(r.PlanUpdatedAt), store.StoredTime(r.At)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.billing.refused == nil {
		s.billing.refused = make(map[string]store.BillingRefusal)
	}
	s.billing.refused[owner] = r
	return nil
}

// BillingRefused implements BillingStore.
func (s *Store) BillingRefused(ctx context.Context, owner string) (store.BillingRefusal, error) {
	if err := ctx.Err(); err != nil {
		return store.BillingRefusal{}, err
	}
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return store.BillingRefusal{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.billing.refused[owner], nil
}
