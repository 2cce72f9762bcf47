package keygate

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// limits admits the requests of verified keys to their route: it refuses a
// key over its monthly quota or its rate limit with 429, and counts every
// request it lets through. Refused requests are not counted.
type limits struct {
	meter   *Meter
	rates   *rateLimits
	now     func() time.Time
	log     *slog.Logger
	project string
}

// wrap returns next behind the quota, the rate limit and the meter.
func (l *limits) wrap(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e := entryOf(r)
		now := l.now()
		if used, over := l.overQuota(e, now); over {
			retry := nextMonth(now).Sub(now)
			l.refuse(w, r, "quota_exceeded", retry, "The API key has used its monthly quota of "+
				strconv.FormatInt(e.key.MonthlyQuota, 10)+" requests; it resets at the start of the next UTC month.",
				slog.Int64("used", used), slog.Int64("quota", e.key.MonthlyQuota))
			return
		}
		if ok, retry := l.rates.allow(w, &e.key, now); !ok {
			l.refuse(w, r, "rate_limited", retry, "The API key is over its rate limit. Retry after the number of seconds in Retry-After.")
			return
		}
		l.meter.Count(e.key.ID, now)
		next(w, r)
	}
}

// overQuota reports the key's requests this month and whether they have
// reached its quota: the month total the store held when the key was last
// read, plus everything this instance has counted since, stored or not.
func (l *limits) overQuota(e *cacheEntry, now time.Time) (used int64, over bool) {
	if e.key.MonthlyQuota <= 0 {
		return 0, false
	}
	counted, _ := l.meter.MonthUsage(e.key.ID, now)
	used = counted
	if e.month == monthIndex(now) {
		used += e.base - e.mark
	}
	return used, used >= e.key.MonthlyQuota
}

// refuse answers 429 with the code and Retry-After, and logs it.
func (l *limits) refuse(w http.ResponseWriter, r *http.Request, code string, retry time.Duration, detail string, attrs ...slog.Attr) {
	logRequest(r.Context(), l.log, slog.LevelWarn, r, l.project, "request refused",
		append(attrs, slog.String("reason", code), slog.String("key_hint", entryOf(r).key.Hint))...)
	setRetryAfter(w, retry)
	writeProblem(w, newProblem(http.StatusTooManyRequests, code, detail))
}
