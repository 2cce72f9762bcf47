package apikey

import (
	"context"

	"github.com/keygate/keygate/apikey/store"
)

// The quota bases. The meter enforces a monthly quota from the month's
// total as the store held it, read each time the key or plan is read, so a
// base is never older than the limits it is checked against. These read
// functions are what the caches call: the caches themselves know nothing
// of quotas.

// readKey reads the key with id and, when it has a monthly quota, its
// month total for the meter: in one round trip (store.KeyReader) when it
// had a quota when last read (prev), else in a second read once the key
// turns out to have one.
func (g *Gate) readKey(ctx context.Context, id string, prev *store.Key) (k store.Key, err error) {
	now := g.now()
	if prev != nil && prev.MonthlyQuota > 0 {
		err = g.meter.ReadMonthWith(ctx, id, now, func(ctx context.Context) (total int64, err error) {
			k, total, err = g.store.ReadKey(ctx, id, store.MonthOf(now))
			return total, err
		})
		return k, err
	}
	if k, err = g.store.Get(ctx, id); err == nil && k.MonthlyQuota > 0 {
		err = g.meter.ReadMonth(ctx, id, now)
	}
	return k, err
}

// readOwner reads the owner's stored plan and, when its effective plan has
// a monthly quota, the owner's month total for the meter: in one round trip
// (store.OwnerReader) when the plan had a quota when last read (prev, the
// effective plan), else in a second read once it turns out to have one.
func (g *Gate) readOwner(ctx context.Context, owner string, prev *store.Plan) (p store.Plan, found bool, err error) {
	now := g.now()
	if prev != nil && prev.MonthlyQuota > 0 {
		err = g.meter.ReadOwnerMonthWith(ctx, owner, now, func(ctx context.Context) (total int64, err error) {
			p, found, total, err = g.store.ReadOwner(ctx, owner, store.MonthOf(now))
			return total, err
		})
		return p, found, err
	}
	p, found, err = store.LoadPlan(ctx, g.store, owner)
	if err == nil && g.cfg.plans().Effective(p, found).MonthlyQuota > 0 {
		err = g.meter.ReadOwnerMonth(ctx, owner, now)
	}
	return p, found, err
}
