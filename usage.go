package keygate

import (
	"cmp"
	"net/http"
	"slices"
	"time"
)

// maxUsageDays is the longest range GET /v1/usage answers.
const maxUsageDays = 92

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
	today := DayOf(now)
	from, to := Day(string(MonthOf(now))+"-01"), today
	q := r.URL.Query()
	for _, p := range []struct {
		name string
		dst  *Day
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(p.name); v != "" {
			d, err := ParseDay(v)
			if err != nil {
				writeProblem(w, invalidField("invalid_date", p.name, quoteShort(v)+" is not a date YYYY-MM-DD"))
				return
			}
			*p.dst = d
		}
	}
	fromT, _ := time.Parse(time.DateOnly, string(from))
	toT, _ := time.Parse(time.DateOnly, string(to))
	switch {
	case to < from:
		writeProblem(w, invalidField("invalid_date", "to", "is before from"))
		return
	case toT.Sub(fromT) >= maxUsageDays*24*time.Hour:
		writeProblem(w, invalidField("invalid_date", "to", "the range is longer than 92 days"))
		return
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	month := MonthOf(now)
	total, err := a.store.MonthlyUsage(ctx, k.ID, month)
	var days []DayUsage
	if err == nil {
		days, err = a.store.DailyUsage(ctx, k.ID, from, to)
	}
	if err != nil {
		a.storeFailed(w, r, err)
		return
	}
	for day, n := range a.meter.Unflushed(k.ID) {
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
	v := UsageView{KeyID: k.ID, Month: month, MonthTotal: total, From: from, To: to, Days: days}
	if k.MonthlyQuota > 0 {
		v.MonthlyQuota = &k.MonthlyQuota
	}
	writeJSON(w, http.StatusOK, v)
}
