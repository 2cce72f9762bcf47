package apikey

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/problem"
	"github.com/keygate/keygate/internal/view"
)

// usageHandler serves KeysHandlers.Usage: the calling key's and its
// owner's usage.
func (g *Gate) usageHandler() http.Handler {
	return management{http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := g.caller(w, r); e != nil {
			g.usage(w, r, e, &e.key)
		}
	})}
}

// usage serves KeysHandlers.KeyUsage: the usage of one key of the caller's
// owner.
func (a *keysAPI) usage(w http.ResponseWriter, r *http.Request, e *cacheEntry) {
	if k, ok := a.ownedKey(w, r, e); ok {
		a.g.usage(w, r, e, &k)
	}
}

// usage serves the usage of key k, of the caller e's owner, to e.
func (g *Gate) usage(w http.ResponseWriter, r *http.Request, e *cacheEntry, k *store.Key) {
	now := g.now()
	q := r.URL.Query()
	from, to, err := keyrules.UsageRange(q.Get("from"), q.Get("to"), now)
	if bad, ok := errors.AsType[*keyrules.DayRangeError](err); ok {
		msg := problem.QuoteShort(bad.Value) + " is not a date YYYY-MM-DD"
		switch bad.Err {
		case keyrules.ErrRangeReversed:
			msg = "is before from"
		case keyrules.ErrRangeTooLong:
			msg = keyrules.ErrRangeTooLong.Error()
		}
		problem.Write(w, problem.InvalidField(codeInvalidDate, bad.Field, msg))
		return
	}
	release, err := g.usageSlots.take(r.Context(), k.Owner, g.cfg.StoreTimeout)
	if err != nil {
		g.refuse(w, r, usageBusy(), e.key.Hint)
		return
	}
	defer release()
	month := store.MonthOf(now)
	var total, ownerTotal int64
	var days []store.DayUsage
	// Exact without a lock across the reads (meter.ReadUsage): a request
	// answered before this one is in the store or in unflushed, never in
	// both or neither. The three reads at once: one round trip's wait.
	unflushed, ownerUnflushed, err := g.meter.ReadUsage(r.Context(), k.ID, k.Owner, func(ctx context.Context) error {
		var wg sync.WaitGroup
		var errs [3]error
		wg.Go(func() { total, errs[0] = g.store.MonthlyUsage(ctx, k.ID, month) })
		wg.Go(func() { days, errs[1] = g.store.DailyUsage(ctx, k.ID, from, to) })
		wg.Go(func() { ownerTotal, errs[2] = g.store.OwnerMonthlyUsage(ctx, k.Owner, month) })
		wg.Wait()
		return cmp.Or(errs[0], errs[1], errs[2])
	})
	if err != nil {
		g.refuse(w, r, g.storeUnavailable(err), e.key.Hint)
		return
	}
	for day, n := range unflushed {
		if day.Month() == month {
			total += n
		}
		if day < from || day > to {
			continue
		}
		if i, ok := slices.BinarySearchFunc(days, day, func(u store.DayUsage, d store.Day) int { return cmp.Compare(u.Day, d) }); ok {
			days[i].Requests += n
		} else {
			days = slices.Insert(days, i, store.DayUsage{Day: day, Requests: n})
		}
	}
	for day, n := range ownerUnflushed {
		if day.Month() == month {
			ownerTotal += n
		}
	}
	v := view.UsageView{KeyID: k.ID, Month: month, MonthTotal: total, From: from, To: to, Days: days,
		Owner: &view.OwnerUsageView{Owner: k.Owner, MonthTotal: ownerTotal}}
	if k.MonthlyQuota > 0 {
		v.MonthlyQuota = &k.MonthlyQuota
	}
	plan, err := g.owners.plan(r.Context(), e, now)
	if err != nil {
		g.refuse(w, r, g.storeUnavailable(err), e.key.Hint)
		return
	}
	if q := plan.MonthlyQuota; q > 0 {
		v.Owner.MonthlyQuota = &q
	}
	problem.WriteJSON(w, http.StatusOK, v)
}
