package keygate

import (
	"errors"
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

// wrap returns next behind the rate limit, the quota and the meter. The
// quota check and the count are one step (Meter.Admit); a request admitted
// is marked done when next returns, so that a shutdown can wait for it.
func (l *limits) wrap(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e := entryOf(r)
		plan := &e.owner.state.Load().plan // set by the Authenticator
		now := l.now()
		if ok, retry, limit := l.rates.allow(w, &e.key, plan, now); !ok {
			l.refuse(w, r, http.StatusTooManyRequests, "rate_limited", limit, retry,
				"The API key is over its "+limitName(limit)+" rate limit. Retry after the number of seconds in Retry-After.")
			return
		}
		err := l.meter.Admit(Admission{KeyID: e.key.ID, Owner: e.key.Owner, KeyQuota: e.key.MonthlyQuota, OwnerQuota: plan.MonthlyQuota}, now)
		if err != nil {
			l.refuseAdmission(w, r, err, now)
			return
		}
		defer l.meter.Done()
		next(w, r)
	}
}

// refuseAdmission answers a request the meter did not admit.
func (l *limits) refuseAdmission(w http.ResponseWriter, r *http.Request, err error, now time.Time) {
	if q, ok := errors.AsType[*quotaExceededError](err); ok {
		l.refuse(w, r, http.StatusTooManyRequests, "quota_exceeded", q.limit, nextMonth(now).Sub(now), "The API key has used its "+limitName(q.limit)+" monthly quota of "+
			strconv.FormatInt(q.quota, 10)+" requests; it resets at the start of the next UTC month.",
			slog.Int64("used", q.used), slog.Int64("quota", q.quota))
		return
	}
	// Shutting down: this instance will not count the request, so it does
	// not serve it; the client retries, on another connection.
	w.Header().Set("Connection", "close")
	l.refuse(w, r, http.StatusServiceUnavailable, "shutting_down", "", storeRetryBackoff, "This instance is shutting down. Retry now.")
}

// limitName says whose limit applied: the key's own, or its owner's plan,
// shared by all the owner's keys.
func limitName(limit string) string {
	if limit == "owner" {
		return "owner's"
	}
	return "own"
}

// refuse answers status with the code, the limit that applied ("key",
// "owner" or "" for none) and Retry-After, and logs it.
func (l *limits) refuse(w http.ResponseWriter, r *http.Request, status int, code, limit string, retry time.Duration, detail string, attrs ...slog.Attr) {
	attrs = append(attrs, slog.String("reason", code), slog.String("key_hint", entryOf(r).key.Hint))
	if limit != "" {
		attrs = append(attrs, slog.String("limit", limit))
	}
	logRequest(r.Context(), l.log, slog.LevelWarn, r, l.project, "request refused", attrs...)
	setRetryAfter(w, retry)
	p := newProblem(status, code, detail)
	p.Limit = limit
	writeProblem(w, p)
}
