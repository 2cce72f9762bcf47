package globallimit

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/limit"
	"github.com/redis/go-redis/v9"
)

// Leases: with Options.Leases, a key's requests are admitted from units
// this instance took of the shared limits in advance, one round trip per
// block instead of one per request (lease.lua): a share of the key's and
// its owner's rate buckets and blocks of their monthly quotas. The units
// come out of the one count on the server when they are granted, so the
// instances together never admit more than the limits; what an instance
// leaves unused is lost capacity (rate tokens) or given back (quota units).
const (
	// rateShareTTL is how long a share of a rate bucket may be admitted
	// from; the unused tokens are then lost.
	rateShareTTL = time.Second
	// quotaBlockTTL is how long a quota block may be admitted from; then
	// the next request gives back its unused part as it takes the next.
	quotaBlockTTL = 10 * time.Second
	// leaseMargin is taken off a lease's life on the instance's clock,
	// measured from before the call: for the difference between clocks.
	leaseMargin = 100 * time.Millisecond
	// recordTTL is how long the server keeps an instance's block record
	// (the units it holds), renewed by each grant: a give-back after it
	// expired returns nothing, its units spent for good.
	recordTTL = time.Hour
	// quotaDivisor caps a quota block at the quota's remaining units over
	// it (the last 256 go one at a time), rateDivisor a rate share at the
	// bucket's available tokens over it.
	quotaDivisor = 256
	rateDivisor  = 4
	// firstBlock is the least a lease asks of a limit.
	firstBlock = 4
	// prefetchFrom is the least grant that is refilled before it runs out.
	prefetchFrom = 16
	// maxBlock caps what one lease asks of each limit.
	maxBlock = 1 << 16
	// minLeaseBurst is the least burst a rate must have to be leased: a
	// smaller one is always asked per request, exactly, with its headers.
	minLeaseBurst = 16
	// exactFor is how long a key is asked per request after a refusal, or
	// after a lease found a limit at its end.
	exactFor = time.Second
	// maxWaits is how many refills in flight a request that finds its
	// lease empty waits for before it asks alone.
	maxWaits = 3
	// maxLeases bounds the leases an instance keeps; keys past it are
	// asked per request.
	maxLeases = 10000
)

//go:embed lease.lua
var leaseSource string

var leaseScript = redis.NewScript(leaseSource)

// The limits a lease holds units of.
const (
	keyRate = iota
	ownerRate
	keyQuota
	ownerQuota
	nLimits
)

// lease is this instance's units of one key's limits: its own and the
// share of its owner's that it took for this key.
type lease struct {
	mu    sync.Mutex
	left  [nLimits]int64 // units in hand
	grant [nLimits]int64 // the last grant: a refill starts at a quarter of it
	until [nLimits]int64 // Unix ns on the instance's clock: none admitted at or after
	// rem is what the rates had left on the server after the last grant,
	// for the headers.
	rem [2]int64
	// used is what was admitted since the last refill: the demand the next
	// one asks for.
	used      int64
	waiting   int64         // requests waiting for the refill in flight
	refilling chan struct{} // one refill in flight at most: closed when it ends
	exactTill int64         // Unix ns until which requests are asked one by one
	// quota names the block records and the month of the quota units in
	// hand, for their give-back.
	quota quotaKeys
	gone  bool // evicted or closed: admits nothing
}

// quotaKeys are the server keys of a lease's quota blocks.
type quotaKeys struct {
	month                  string
	keyCount, ownerCount   string
	keyRecord, ownerRecord string
	keyTAT, ownerTAT       string
}

// instanceID names this process's block records on the server.
func instanceID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// wants returns the limits r has, and whether it can be leased at all: a
// rate with a small burst is not.
func wants(r *Request) (need [nLimits]bool, ok bool) {
	need = [nLimits]bool{r.KeyRate.PerSecond > 0, r.OwnerRate.PerSecond > 0, r.KeyQuota > 0, r.OwnerQuota > 0}
	if need[keyRate] && r.KeyRate.Burst < minLeaseBurst || need[ownerRate] && r.OwnerRate.Burst < minLeaseBurst {
		return need, false
	}
	return need, true
}

// leaseOf returns the lease of r's key, made if there is room.
func (l *Limiter) leaseOf(id string) *lease {
	l.leasesMu.RLock()
	le := l.leases[id]
	l.leasesMu.RUnlock()
	if le != nil {
		return le
	}
	l.leasesMu.Lock()
	defer l.leasesMu.Unlock()
	if le = l.leases[id]; le != nil {
		return le
	}
	if len(l.leases) >= maxLeases {
		l.prune()
		if len(l.leases) >= maxLeases {
			return nil
		}
	}
	le = &lease{}
	l.leases[id] = le
	return le
}

// prune drops the leases with nothing in hand or past their life, under
// leasesMu: the quota units of an expired one stay spent (lost capacity),
// as a dead instance's do.
func (l *Limiter) prune() {
	now := l.now().UnixNano()
	for id, le := range l.leases {
		le.mu.Lock()
		idle := le.refilling == nil
		for i := range nLimits {
			idle = idle && (le.left[i] <= 0 || now >= le.until[i])
		}
		if idle {
			le.gone = true
			delete(l.leases, id)
		}
		le.mu.Unlock()
	}
}

// admitLeased admits r from its key's lease, or takes the next lease for
// it, or asks for r alone; see Options.Leases.
func (l *Limiter) admitLeased(ctx context.Context, r *Request, need [nLimits]bool) (Decision, error) {
	le := l.leaseOf(r.KeyID)
	if le == nil {
		return l.admitOne(ctx, r, nil)
	}
	var now int64
	if r.At.IsZero() {
		now = l.now().UnixNano()
	} else {
		now = r.At.UnixNano() // the caller's clock, which is the limiter's
	}
	le.mu.Lock()
	if le.gone || now < le.exactTill {
		le.mu.Unlock()
		return l.admitOne(ctx, r, le)
	}
	// A request that waits for refills waits at most the limiter's
	// deadline in all, as a call of its own would.
	var wait *time.Timer
	var waitFrom time.Time
	timedOut, rewaited := false, false
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	for try := 0; ; try++ {
		in, low := true, false
		for i := range nLimits {
			if !need[i] {
				continue
			}
			if le.left[i] <= 0 || now >= le.until[i] || i >= keyQuota && le.quota.month != r.Month {
				in = false
				break
			}
			// A small block is taken again when it is empty, by the
			// request that needs it.
			low = low || le.grant[i] >= prefetchFrom && le.left[i]*4 <= le.grant[i]
		}
		if in {
			for i := range nLimits {
				if need[i] {
					le.left[i]--
				}
			}
			le.used++
			d := le.decision(r)
			// The next block before this one runs out, so that the
			// requests after this one do not wait: by this request, in
			// the background, on a context of its own (the instance has
			// CPU while it serves; if it has not, a request that finds
			// the lease empty waits for this refill at most the
			// limiter's deadline, then asks by itself).
			start := low && le.refilling == nil && !l.down.Load()
			if start {
				le.refilling = make(chan struct{})
			}
			le.mu.Unlock()
			if start {
				rc := *r
				go l.refill(&rc, le, need, false)
			}
			return d, nil
		}
		if timedOut {
			le.mu.Unlock()
			return Decision{}, ErrUnavailable
		}
		if le.refilling == nil {
			le.refilling = make(chan struct{})
			le.mu.Unlock()
			return l.refill(r, le, need, true)
		}
		if try >= maxWaits || l.down.Load() {
			le.mu.Unlock()
			return l.admitOne(ctx, r, le)
		}
		// The refill in flight has its own deadline: wait for it, a few
		// times at most; the next one asks for the requests waiting too.
		done := le.refilling
		le.waiting++
		le.mu.Unlock()
		if wait == nil {
			wait, waitFrom = time.NewTimer(l.timeout), l.now()
		}
		select {
		case <-done:
		case <-wait.C:
			// A wait that ended far past its deadline was a pause of
			// this instance, not a slow server (Limiter.call): it
			// waits once more, for the refill's own retry.
			if !rewaited && l.paused(waitFrom) {
				rewaited = true
				wait.Reset(l.timeout)
				waitFrom = l.now()
			} else {
				timedOut = true
			}
		case <-ctx.Done():
			timedOut = true
		}
		now = l.now().UnixNano()
		le.mu.Lock()
		le.waiting--
		if le.gone || now < le.exactTill {
			le.mu.Unlock()
			return l.admitOne(ctx, r, le)
		}
	}
}

// decision is the answer to a request admitted from le, under its lock:
// the rate whose share has fewer tokens left on the server, as admit.lua's
// headers show.
func (le *lease) decision(r *Request) Decision {
	d := Decision{Rate: limit.Decision{Allowed: true}, Quota: limit.Decision{Allowed: true}}
	for i, rt := range [2]struct {
		w    limit.Which
		rate float64
		b    int64
	}{{limit.Key, r.KeyRate.PerSecond, int64(r.KeyRate.Burst)}, {limit.Owner, r.OwnerRate.PerSecond, int64(r.OwnerRate.Burst)}} {
		if !(rt.rate > 0) {
			continue
		}
		rem := min(rt.b, max(0, le.rem[i]+le.left[i]))
		if d.Rate.Which == limit.None || rem < d.Rate.Remaining {
			d.Rate.Which, d.Rate.Limit, d.Rate.Remaining = rt.w, rt.b, rem
			d.Rate.Reset = int64(math.Ceil(float64(rt.b-rem) / rt.rate))
		}
	}
	return d
}

// refill takes the next lease for r's key: the limits whose units are low
// or past their life, what the last one used twice over, in one call on a
// context of its own with the limiter's deadline (not the request's: the
// units serve the requests after it). With take, r is admitted from it,
// or asked alone if the lease found a limit at its end.
func (l *Limiter) refill(r *Request, le *lease, need [nLimits]bool, take bool) (Decision, error) {
	if l.down.Load() && !l.probe() {
		l.endRefill(le)
		return Decision{}, ErrUnavailable
	}
	r.floors()
	start := l.now()
	now := start.UnixNano()
	le.mu.Lock()
	// Demand: twice what the last lease admitted, and twice its largest
	// grant if it ran low before its life ended.
	size := 2 * (le.used + le.waiting)
	for i := range nLimits {
		if need[i] && now < le.until[i] && le.left[i]*4 <= le.grant[i] {
			size = max(size, 2*le.grant[i])
		}
	}
	size = min(maxBlock, max(firstBlock, size))
	le.used = 0
	var ask, back [nLimits]int64
	if le.quota.month != r.Month {
		// Another month's units count nothing now.
		le.left[keyQuota], le.left[ownerQuota] = 0, 0
	}
	for i := range nLimits {
		if !need[i] {
			continue
		}
		expired := now >= le.until[i]
		if expired && i >= keyQuota {
			back[i], le.left[i] = max(0, le.left[i]), 0
		}
		if expired || le.left[i]*4 <= le.grant[i] || take && le.left[i] <= 0 {
			ask[i] = size
		}
		if expired && i < keyQuota {
			le.left[i] = 0
		}
	}
	if le.quota.month != r.Month || le.quota.keyCount == "" {
		le.quota = l.quotaKeysOf(r)
	}
	qk := le.quota
	// The floors hold the units in hand: the server's count, seeded from
	// them after it lost its data, never falls below what this instance
	// may still admit.
	kf, of := r.KeyUsed+max(0, le.left[keyQuota]), r.OwnerUsed+max(0, le.left[ownerQuota])
	le.mu.Unlock()

	args := []any{
		interval(r.KeyRate), r.KeyRate.Burst, interval(r.OwnerRate), r.OwnerRate.Burst,
		r.KeyQuota, r.OwnerQuota, kf, of, max(1, int64(r.Expiry/time.Second)),
		ask[keyRate], ask[ownerRate], ask[keyQuota], ask[ownerQuota],
		back[keyQuota], back[ownerQuota], recordTTL.Milliseconds(), quotaDivisor, rateDivisor,
	}
	var v []int64
	err := l.call(context.Background(), func(ctx context.Context) (err error) {
		v, err = leaseScript.Run(ctx, l.client, []string{qk.keyTAT, qk.ownerTAT, qk.keyCount, qk.ownerCount, qk.keyRecord, qk.ownerRecord}, args...).Int64Slice()
		return err
	})
	if err == nil && len(v) != 9 {
		err = fmt.Errorf("lease script answered %d values, want 9", len(v))
	}
	if err != nil {
		// A lost answer: the units it may have granted are lost capacity,
		// never admitted twice.
		if !errors.Is(err, redis.ErrClosed) {
			l.failed(err)
		}
		l.endRefill(le)
		return Decision{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l.answered()
	le.mu.Lock()
	l.refilled(le)
	if v[0] == 0 {
		// A limit at or near its end: exact, one request at a time.
		le.exactTill = l.now().Add(exactFor).UnixNano()
		le.mu.Unlock()
		if !take {
			return Decision{}, nil
		}
		return l.admitOne(context.Background(), r, le)
	}
	for i := range nLimits {
		if g := v[1+i]; g > 0 {
			le.left[i] = max(0, le.left[i]) + g
			le.grant[i] = g
			ttl := rateShareTTL
			if i >= keyQuota {
				ttl = quotaBlockTTL
			}
			le.until[i] = start.Add(ttl - leaseMargin).UnixNano()
		}
	}
	le.rem = [2]int64{v[5], v[6]}
	if !take {
		le.mu.Unlock()
		return Decision{}, nil
	}
	for i := range nLimits {
		if need[i] && le.left[i] <= 0 {
			le.mu.Unlock()
			return l.admitOne(context.Background(), r, le)
		}
	}
	for i := range nLimits {
		if need[i] {
			le.left[i]--
		}
	}
	le.used++
	d := le.decision(r)
	le.mu.Unlock()
	return d, nil
}

func (l *Limiter) endRefill(le *lease) {
	le.mu.Lock()
	l.refilled(le)
	le.mu.Unlock()
}

// refilled ends le's refill, under its lock.
func (l *Limiter) refilled(le *lease) {
	if le.refilling != nil {
		close(le.refilling)
		le.refilling = nil
	}
}

// quotaKeysOf names r's server keys, as admit.lua's, and its block records.
func (l *Limiter) quotaKeysOf(r *Request) quotaKeys {
	tag := l.prefix + "{" + r.Owner + "}:"
	q := quotaKeys{
		month:      r.Month,
		keyTAT:     tag + "rate:key:" + r.KeyID,
		ownerTAT:   tag + "rate:owner",
		keyCount:   tag + "quota:key:" + r.KeyID + ":" + r.Month,
		ownerCount: tag + "quota:owner:" + r.Month,
	}
	q.keyRecord = q.keyCount + ":held:" + l.id
	q.ownerRecord = q.ownerCount + ":held:" + l.id
	return q
}

// giveBack returns the unused units of every quota block in hand, in one
// round trip (a pipeline), within ctx and the limiter's deadline; the
// leases admit nothing after it.
func (l *Limiter) giveBack(ctx context.Context) error {
	l.leasesMu.Lock()
	pipe := l.client.Pipeline()
	n := 0
	for id, le := range l.leases {
		le.mu.Lock()
		le.gone = true
		kb, ob := max(0, le.left[keyQuota]), max(0, le.left[ownerQuota])
		le.left = [nLimits]int64{}
		q := le.quota
		le.mu.Unlock()
		delete(l.leases, id)
		if kb+ob == 0 || q.keyCount == "" {
			continue
		}
		pipe.Eval(ctx, leaseSource, []string{q.keyTAT, q.ownerTAT, q.keyCount, q.ownerCount, q.keyRecord, q.ownerRecord},
			"0", 0, "0", 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, kb, ob, recordTTL.Milliseconds(), quotaDivisor, rateDivisor)
		n++
	}
	l.leasesMu.Unlock()
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	l.roundTrips.Add(1)
	_, err := pipe.Exec(ctx)
	return err
}
