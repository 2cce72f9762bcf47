// Package ratelimit holds the token buckets of the Gate: each key's and
// each owner's rate limit (Limits), and the budget of store reads for
// keys that turn out not to exist (UnknownKeys). It answers decisions
// (limit.Decision); the Gate writes the headers.
package ratelimit

import (
	"math"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/limit"
	"github.com/keygate/keygate/internal/lruutil"
	"golang.org/x/time/rate"
)

// Limits holds the token buckets of this instance: one per owner, with
// its plan's rate and burst (the defaults included), shared by all its keys;
// and one per key that has a rate_limit of its own, which can only make the
// key's limit tighter than its owner's.
type Limits struct {
	owners, keys *lru.Cache[string, *rate.Limiter]
	mu           sync.Mutex // serializes creating a bucket
}

// NewLimits returns the buckets of up to size owners and size keys.
func NewLimits(size int) *Limits {
	owners, _ := lru.New[string, *rate.Limiter](size)
	keys, _ := lru.New[string, *rate.Limiter](size)
	return &Limits{owners: owners, keys: keys}
}

// limitOf is the key's own rate and burst; a rate of 0 means none. A
// document edited by hand past MaxRateLimit or MaxBurst (even to +Inf) is
// served at those bounds, and a NaN rate as none: so every sum and product
// below stays finite and within int64.
func limitOf(k *store.Key) (float64, int) {
	if !(k.RateLimit > 0) {
		return 0, 0
	}
	return clampLimit(k.RateLimit, keyrules.EffectiveBurst(*k))
}

// clampLimit bounds a rate and burst read from the store.
func clampLimit(r float64, b int) (float64, int) {
	if !(r > 0) {
		return 0, 0
	}
	if b < 1 {
		b = keyrules.DefaultBurst(r)
	}
	return min(r, keyrules.MaxRateLimit), min(b, keyrules.MaxBurst)
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

// Rate is a rate limit: requests per second and burst; a PerSecond of 0
// means none.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Rates are the rate limits that apply to a request of the key: its own
// (none unless it has a rate_limit) and its owner's plan's, each bounded
// as limitOf says.
func Rates(k *store.Key, plan *store.Plan) (key, owner Rate) {
	key.PerSecond, key.Burst = limitOf(k)
	owner.PerSecond, owner.Burst = clampLimit(plan.RateLimit, plan.Burst)
	return key, owner
}

// Allow takes one token at now from the key's bucket, if it has a rate of
// its own, and then from its owner's (plan's rate and burst), and returns
// the decision of the limit that applied: the one that refused, or else
// the one with fewer tokens left. The key's bucket goes first, so that a
// key over its own limit costs its owner's other keys nothing.
func (l *Limits) Allow(k *store.Key, plan *store.Plan, now time.Time) limit.Decision {
	var applied bucketState
	which := limit.None
	kr, or := Rates(k, plan)
	if kr.PerSecond > 0 {
		applied = take(l.keys, &l.mu, k.ID, kr.PerSecond, kr.Burst, now)
		which = limit.Key
	}
	if (applied.ok || which == limit.None) && or.PerSecond > 0 {
		if o := take(l.owners, &l.mu, k.Owner, or.PerSecond, or.Burst, now); which == limit.None || !o.ok || o.tokens < applied.tokens {
			applied, which = o, limit.Owner
		}
	}
	if which == limit.None {
		return limit.Decision{Allowed: true}
	}
	d := limit.Decision{
		Allowed:   applied.ok,
		Which:     which,
		Limit:     int64(applied.burst),
		Remaining: int64(max(0, int(applied.tokens))),                                                 // tokens <= burst <= MaxBurst
		Reset:     int64(math.Ceil(waitSeconds(float64(applied.burst)-applied.tokens, applied.rate))), // until the bucket is full
	}
	if !applied.ok {
		d.RetryAfter = time.Duration(waitSeconds(1-applied.tokens, applied.rate) * float64(time.Second))
	}
	return d
}

// GiveBack returns the token that an admitting Allow of k took at now
// from each of its buckets: for a request the Gate then did not admit for
// another limit's refusal (Redis's), so that this instance's buckets hold
// only what it admitted. A bucket evicted since has nothing to return.
func (l *Limits) GiveBack(k *store.Key, plan *store.Plan, now time.Time) {
	kr, or := Rates(k, plan)
	if kr.PerSecond > 0 {
		giveBack(l.keys, k.ID, now)
	}
	if or.PerSecond > 0 {
		giveBack(l.owners, k.Owner, now)
	}
}

// giveBack adds one token at now to the bucket of name, if it exists.
// AllowN of -1 adds one without ever refusing; a bucket full again by now
// holds burst+1 until its next read, which caps it at burst (x/time/rate's
// advance), so the token can never outgrow the burst (TestGiveBack).
func giveBack(buckets *lru.Cache[string, *rate.Limiter], name string, now time.Time) {
	if lim, ok := buckets.Peek(name); ok {
		lim.AllowN(now, -1)
	}
}

// bucketState is one bucket's answer to a request.
type bucketState struct {
	ok     bool
	rate   float64
	burst  int
	tokens float64 // left after the request
}

// take takes one token at now from the bucket of name in buckets, created
// full, with rate r and burst b (updated if they changed).
func take(buckets *lru.Cache[string, *rate.Limiter], mu *sync.Mutex, name string, r float64, b int, now time.Time) bucketState {
	lim, found := buckets.Get(name)
	if !found { // apart from the hit, whose closure would cost an allocation
		lim = lruutil.GetOrAdd(buckets, mu, name, func() *rate.Limiter { return rate.NewLimiter(rate.Limit(r), b) })
	}
	if lim.Limit() != rate.Limit(r) || lim.Burst() != b { // the limits changed
		lim.SetLimitAt(now, rate.Limit(r))
		lim.SetBurstAt(now, b)
	}
	ok := lim.AllowN(now, 1)
	return bucketState{ok: ok, rate: r, burst: b, tokens: lim.TokensAt(now)}
}
