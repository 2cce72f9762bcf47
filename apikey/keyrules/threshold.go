package keyrules

import (
	"slices"

	"github.com/keygate/keygate/apikey/store"
)

// Thresholds are the percentages of a monthly quota that
// keygate.usage.threshold reports, once each per key or owner and month.
var Thresholds = []int{80, 100}

// QuotaMonth is a key's or an owner's month with a quota in a usage batch:
// the requests the batch adds to it.
type QuotaMonth struct {
	Owner string
	KeyID string // "" for the owner's month
	Month store.Month
	Quota int64
	Added int64
}

// QuotaMonths returns the months with a quota of a batch of counts, each
// key's and each counted owner's, in a stable order; the quota of a month
// is the highest its counts carry.
func QuotaMonths(counts []store.UsageCount) []QuotaMonth {
	type id struct {
		owner, key string
		month      store.Month
	}
	byID := map[id]*QuotaMonth{}
	var order []id
	add := func(i id, quota, n int64) {
		q := byID[i]
		if q == nil {
			q = &QuotaMonth{Owner: i.owner, KeyID: i.key, Month: i.month}
			byID[i] = q
			order = append(order, i)
		}
		q.Quota, q.Added = max(q.Quota, quota), q.Added+n
	}
	for _, c := range counts {
		if c.KeyQuota > 0 {
			add(id{c.Owner, c.KeyID, c.Day.Month()}, c.KeyQuota, c.Requests)
		}
		if c.OwnerQuota > 0 && ownerCounted(c.Owner) {
			add(id{c.Owner, "", c.Day.Month()}, c.OwnerQuota, c.Requests)
		}
	}
	out := make([]QuotaMonth, 0, len(order))
	for _, i := range order {
		out = append(out, *byID[i])
	}
	return out
}

// Crossed returns the thresholds of q that a month holding before requests
// reaches with the batch's, and that reported (the ones recorded) does not
// hold: the events to record with the batch.
func Crossed(q QuotaMonth, before int64, reported []int) []store.Threshold {
	var out []store.Threshold
	for _, p := range Thresholds {
		if (before+q.Added)*100 >= q.Quota*int64(p) && !slices.Contains(reported, p) {
			out = append(out, store.Threshold{Owner: q.Owner, KeyID: q.KeyID, Month: q.Month, Quota: q.Quota, Used: before + q.Added, Percent: p})
		}
	}
	return out
}
