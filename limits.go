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
		now := l.now()
		if ok, retry := l.rates.allow(w, &e.key, now); !ok {
			l.refuse(w, r, http.StatusTooManyRequests, "rate_limited", retry, "The API key is over its rate limit. Retry after the number of seconds in Retry-After.")
			return
		}
		err := l.meter.Admit(e.key.ID, e.key.MonthlyQuota, now)
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
		l.refuse(w, r, http.StatusTooManyRequests, "quota_exceeded", nextMonth(now).Sub(now), "The API key has used its monthly quota of "+
			strconv.FormatInt(q.quota, 10)+" requests; it resets at the start of the next UTC month.",
			slog.Int64("used", q.used), slog.Int64("quota", q.quota))
		return
	}
	// Shutting down: this instance will not count the request, so it does
	// not serve it; the client retries, on another connection.
	w.Header().Set("Connection", "close")
	l.refuse(w, r, http.StatusServiceUnavailable, "shutting_down", storeRetryBackoff, "This instance is shutting down. Retry now.")
}

// refuse answers status with the code and Retry-After, and logs it.
func (l *limits) refuse(w http.ResponseWriter, r *http.Request, status int, code string, retry time.Duration, detail string, attrs ...slog.Attr) {
	logRequest(r.Context(), l.log, slog.LevelWarn, r, l.project, "request refused",
		append(attrs, slog.String("reason", code), slog.String("key_hint", entryOf(r).key.Hint))...)
	setRetryAfter(w, retry)
	writeProblem(w, newProblem(status, code, detail))
}
