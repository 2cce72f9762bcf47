package apikey

import (
	"context"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/meter"
)

// The quota bases. The meter enforces a monthly quota from the month's
// total as the store held it, read each time the key or plan is read, so a
// base is never older than the limits it is checked against. These read
// functions are what the caches call: the caches themselves know nothing
// of quotas.

// readStore is the read side of a store that the request path (Protect)
// uses to fill its caches: a key by ID, alone or with its month's usage
// (store.KeyReader), and an owner's plan, alone or with its month's usage
// (store.OwnerReader). With the change feed (store.ChangeStore) and the
// meter's counts (store.UsageStore) it is all Protect asks of a store: it
// never writes a key or a plan.
type readStore interface {
	Get(ctx context.Context, id string) (store.Key, error)
	store.KeyReader
	GetPlan(ctx context.Context, owner string) (store.Plan, error)
	store.OwnerReader
}

// reader reads keys and plans for the caches, and their quota bases for the
// meter.
type reader struct {
	store     readStore
	meter     *meter.Meter
	now       func() time.Time
	effective func(p store.Plan, found bool) store.Plan // Config.EffectivePlan
}

// readKey reads the key with id and, when it has a monthly quota, its
// month total for the meter: in one round trip (store.KeyReader) when it
// had a quota when last read (prev), else in a second read once the key
// turns out to have one.
func (rd reader) readKey(ctx context.Context, id string, prev *store.Key) (k store.Key, err error) {
	now := rd.now()
	if prev != nil && prev.MonthlyQuota > 0 {
		err = rd.meter.ReadMonthWith(ctx, id, now, func(ctx context.Context) (total int64, err error) {
			k, total, err = rd.store.ReadKey(ctx, id, store.MonthOf(now))
			return total, err
		})
		return k, err
	}
	if k, err = rd.store.Get(ctx, id); err == nil && k.MonthlyQuota > 0 {
		err = rd.meter.ReadMonth(ctx, id, now)
	}
	return k, err
}

// readOwner reads the owner's stored plan and, when its effective plan has
// a monthly quota, the owner's month total for the meter: in one round trip
// (store.OwnerReader) when the plan had a quota when last read (prev, the
// effective plan), else in a second read once it turns out to have one.
func (rd reader) readOwner(ctx context.Context, owner string, prev *store.Plan) (p store.Plan, found bool, err error) {
	now := rd.now()
	if prev != nil && prev.MonthlyQuota > 0 {
		err = rd.meter.ReadOwnerMonthWith(ctx, owner, now, func(ctx context.Context) (total int64, err error) {
			p, found, total, err = rd.store.ReadOwner(ctx, owner, store.MonthOf(now))
			return total, err
		})
		return p, found, err
	}
	p, found, err = keyrules.LoadPlan(ctx, rd.store, owner)
	if err == nil && rd.effective(p, found).MonthlyQuota > 0 {
		err = rd.meter.ReadOwnerMonth(ctx, owner, now)
	}
	return p, found, err
}
