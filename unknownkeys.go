package keygate

import (
	"errors"
	"math"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// ErrTooManyUnknownKeys is returned, wrapped in an *unknownKeysError, for a
// lookup that would read the store for an uncached key while the client
// address, or the instance, has used up its budget of unknown-key reads.
var ErrTooManyUnknownKeys = errors.New("too many unknown keys")

// unknownKeyLimits are the budgets of store reads for keys that turn out not
// to exist. The key checksum is public, so anyone can make well-formed
// unknown keys, each a store read; these bound what that costs. See the
// README for the worst case they allow.
type unknownKeyLimits struct {
	rate, burst                 float64 // per client address
	instanceRate, instanceBurst float64 // for all addresses together
	addrs                       int     // addresses tracked (an LRU)
}

// defaultUnknownKeyLimits: a client that mistypes a key now and then never
// notices; a flood from one address costs 10 reads, then 1 a second; the
// whole instance at most 100, then 50 a second, whatever the addresses.
var defaultUnknownKeyLimits = unknownKeyLimits{
	rate: 1, burst: 10,
	instanceRate: 50, instanceBurst: 100,
	addrs: 10_000,
}

// unknownKeys charges store reads of uncached keys to the client address
// and to the instance. A read is charged before it is made and refunded when
// the key exists, so only unknown keys (and reads that fail) use the budget:
// a valid key is never charged, and a cached key is never read at all.
type unknownKeys struct {
	lim      unknownKeyLimits
	instance bucket
	addrs    *lru.Cache[string, *bucket]
	mu       sync.Mutex // serializes creating an address's bucket
}

func newUnknownKeys(lim unknownKeyLimits) *unknownKeys {
	addrs, _ := lru.New[string, *bucket](lim.addrs)
	return &unknownKeys{lim: lim, addrs: addrs, instance: bucket{tokens: lim.instanceBurst}}
}

// unknownKeyCharge is one read charged to an address and to the instance.
type unknownKeyCharge struct {
	u    *unknownKeys
	addr *bucket
}

// unknownKeysError is ErrTooManyUnknownKeys for the address addr, with the
// time until it has a token.
type unknownKeysError struct {
	addr  string
	retry time.Duration
}

func (e *unknownKeysError) Error() string {
	return ErrTooManyUnknownKeys.Error() + ": retry in " + strconv.FormatFloat(e.retry.Seconds(), 'f', 3, 64) + "s"
}

func (e *unknownKeysError) Unwrap() error { return ErrTooManyUnknownKeys }

// charge takes one token from addr's bucket and one from the instance's, or
// neither and returns an *unknownKeysError.
func (u *unknownKeys) charge(addr string, now time.Time) (*unknownKeyCharge, error) {
	b := u.bucket(addr, now)
	if ok, wait := b.take(now, u.lim.rate, u.lim.burst); !ok {
		return nil, &unknownKeysError{addr, wait}
	}
	if ok, wait := u.instance.take(now, u.lim.instanceRate, u.lim.instanceBurst); !ok {
		b.give(now, u.lim.rate, u.lim.burst)
		return nil, &unknownKeysError{addr, wait}
	}
	return &unknownKeyCharge{u, b}, nil
}

// refund gives a charge back: the key existed. A nil charge is a no-op.
func (c *unknownKeyCharge) refund(now time.Time) {
	if c == nil {
		return
	}
	c.addr.give(now, c.u.lim.rate, c.u.lim.burst)
	c.u.instance.give(now, c.u.lim.instanceRate, c.u.lim.instanceBurst)
}

// bucket returns addr's bucket, creating it full. An address evicted from
// the LRU starts full again: the instance bucket still bounds the reads.
func (u *unknownKeys) bucket(addr string, now time.Time) *bucket {
	return getOrAdd(u.addrs, &u.mu, addr, func() *bucket { return &bucket{tokens: u.lim.burst, last: now} })
}

// bucket is a token bucket whose tokens can be given back. It is not
// golang.org/x/time/rate's Limiter because a Reservation cannot be given
// back after the read: CancelAt restores nothing once its time has passed,
// and cancelling at the reservation's time rewinds the limiter's clock,
// refilling it a second time for the length of the read.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// take takes a token at now, refilling at rate up to burst; without one it
// returns how long until there is one.
func (b *bucket) take(now time.Time, rate, burst float64) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now, rate, burst)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration(math.Ceil((1 - b.tokens) / rate * float64(time.Second)))
}

// give puts back a token taken earlier.
func (b *bucket) give(now time.Time, rate, burst float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now, rate, burst)
	b.tokens = min(burst, b.tokens+1)
}

func (b *bucket) advance(now time.Time, rate, burst float64) {
	if b.last.IsZero() {
		b.last = now
	}
	if now.After(b.last) {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
		b.last = now
	}
}
