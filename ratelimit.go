package keygate

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// rateLimits holds a token bucket per key, on this instance: a key's
// rate_limit (requests per second) and burst, or the defaults.
type rateLimits struct {
	buckets      *lru.Cache[string, *rate.Limiter]
	defaultRate  float64
	defaultBurst int
	mu           sync.Mutex // serializes creating a bucket
}

// newRateLimits returns the buckets of up to size keys.
func newRateLimits(size int, defaultRate float64, defaultBurst int) *rateLimits {
	buckets, _ := lru.New[string, *rate.Limiter](size)
	return &rateLimits{buckets: buckets, defaultRate: defaultRate, defaultBurst: defaultBurst}
}

// limitOf is the key's rate and burst; a rate of 0 means no limit. A
// document edited by hand past MaxRateLimit or MaxBurst (even to +Inf) is
// served at those bounds, and a NaN rate as none: so every sum and product
// below stays finite and within int64.
func (l *rateLimits) limitOf(k *Key) (float64, int) {
	r, b := k.RateLimit, k.Burst
	if !(r > 0) {
		r, b = l.defaultRate, l.defaultBurst
	}
	if r > 0 && b < 1 {
		b = defaultBurst(r)
	}
	return min(r, MaxRateLimit), min(b, MaxBurst)
}

// maxWaitSeconds caps RateLimit-Reset and Retry-After: the longest
// time.Duration, about 292 years, which a rate as low as a hand-edited 1e-300
// would otherwise overflow.
const maxWaitSeconds = float64(math.MaxInt64 / int64(time.Second))

// waitSeconds is the time, in seconds, that rate r takes to earn need
// tokens: never negative, and saturated at maxWaitSeconds.
func waitSeconds(need, r float64) float64 {
	s := need / r
	switch {
	case !(s > 0): // also NaN
		return 0
	case s > maxWaitSeconds:
		return maxWaitSeconds
	}
	return s
}

// allow takes one token from the key's bucket at now, and sets the
// RateLimit-Limit, -Remaining and -Reset headers. It returns whether the
// request may go on and, if not, how long until it could.
func (l *rateLimits) allow(w http.ResponseWriter, k *Key, now time.Time) (ok bool, retry time.Duration) {
	r, burst := l.limitOf(k)
	if r <= 0 {
		return true, 0
	}
	lim := l.bucket(k.ID, r, burst)
	if lim.Limit() != rate.Limit(r) || lim.Burst() != burst { // the key's limits changed
		lim.SetLimitAt(now, rate.Limit(r))
		lim.SetBurstAt(now, burst)
	}
	ok = lim.AllowN(now, 1)
	tokens := lim.TokensAt(now)
	// The header names are in canonical form, and the three values share one
	// slice: on the hot path, that saves six allocations over Header.Set.
	vals := []string{
		strconv.Itoa(burst),
		strconv.Itoa(max(0, int(tokens))), // tokens <= burst <= MaxBurst
		strconv.FormatInt(int64(math.Ceil(waitSeconds(float64(burst)-tokens, r))), 10), // until the bucket is full
	}
	h := w.Header()
	h["Ratelimit-Limit"] = vals[0:1:1]
	h["Ratelimit-Remaining"] = vals[1:2:2]
	h["Ratelimit-Reset"] = vals[2:3:3]
	if !ok {
		retry = time.Duration(waitSeconds(1-tokens, r) * float64(time.Second))
	}
	return ok, retry
}

// bucket returns the key's bucket, creating it full.
func (l *rateLimits) bucket(id string, r float64, burst int) *rate.Limiter {
	if lim, ok := l.buckets.Get(id); ok {
		return lim
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim, ok := l.buckets.Get(id); ok {
		return lim
	}
	lim := rate.NewLimiter(rate.Limit(r), burst)
	l.buckets.Add(id, lim)
	return lim
}
