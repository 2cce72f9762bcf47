package keygate

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
)

// UsageView is a key's usage as keygate shows it: GET /v1/usage and
// "apikey usage" print it.
type UsageView struct {
	KeyID        string     `json:"key_id"`
	Month        Month      `json:"month"`
	MonthTotal   int64      `json:"month_total"`
	MonthlyQuota *int64     `json:"monthly_quota"`
	From         Day        `json:"from"`
	To           Day        `json:"to"`
	Days         []DayUsage `json:"days"`
	// Owner is the usage of the key's owner, all its keys together, against
	// its plan; GET /v1/usage always shows it.
	Owner *OwnerUsageView `json:"owner,omitempty"`
}

// OwnerUsageView is an owner's usage this month against its plan's quota
// (null for none).
type OwnerUsageView struct {
	Owner        string `json:"owner"`
	MonthTotal   int64  `json:"month_total"`
	MonthlyQuota *int64 `json:"monthly_quota"`
}

// usageAPI serves GET /v1/usage.
type usageAPI struct {
	endpoint
	store UsageStore
	meter *Meter
}

// get serves GET /v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD: the calling key's
// requests this UTC month, its quota, and its requests per day from..to
// (default: this month so far). Counts include this instance's requests that
// are not stored yet.
func (a *usageAPI) get(w http.ResponseWriter, r *http.Request) {
	k := callerOf(r)
	now := a.now()
	q := r.URL.Query()
	from, to, err := UsageRange(q.Get("from"), q.Get("to"), now)
	if bad, ok := errors.AsType[*DayRangeError](err); ok {
		msg := quoteShort(bad.Value) + " is not a date YYYY-MM-DD"
		switch bad.Err {
		case ErrRangeReversed:
			msg = "is before from"
		case ErrRangeTooLong:
			msg = ErrRangeTooLong.Error()
		}
		writeProblem(w, invalidField("invalid_date", bad.Field, msg))
		return
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	month := MonthOf(now)
	var total, ownerTotal int64
	var days []DayUsage
	// Read while no usage batch commits: a request answered before this one
	// is then either in the store or in unflushed, never in both or neither.
	unflushed, ownerUnflushed, err := a.meter.ReadUsage(ctx, k.ID, k.Owner, func(ctx context.Context) (err error) {
		if total, err = a.store.MonthlyUsage(ctx, k.ID, month); err == nil {
			if days, err = a.store.DailyUsage(ctx, k.ID, from, to); err == nil {
				ownerTotal, err = a.store.OwnerMonthlyUsage(ctx, k.Owner, month)
			}
		}
		return err
	})
	if err != nil {
		a.storeFailed(w, r, err)
		return
	}
	for day, n := range unflushed {
		if day.Month() == month {
			total += n
		}
		if day < from || day > to {
			continue
		}
		if i, ok := slices.BinarySearchFunc(days, day, func(u DayUsage, d Day) int { return cmp.Compare(u.Day, d) }); ok {
			days[i].Requests += n
		} else {
			days = slices.Insert(days, i, DayUsage{day, n})
		}
	}
	for day, n := range ownerUnflushed {
		if day.Month() == month {
			ownerTotal += n
		}
	}
	v := UsageView{KeyID: k.ID, Month: month, MonthTotal: total, From: from, To: to, Days: days,
		Owner: &OwnerUsageView{Owner: k.Owner, MonthTotal: ownerTotal}}
	if k.MonthlyQuota > 0 {
		v.MonthlyQuota = &k.MonthlyQuota
	}
	if q := entryOf(r).owner.state.Load().plan.MonthlyQuota; q > 0 {
		v.Owner.MonthlyQuota = &q
	}
	writeJSON(w, http.StatusOK, v)
}
