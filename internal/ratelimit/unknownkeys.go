package ratelimit

import (
	"errors"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/keygate/keygate/internal/lruutil"
)

// ErrTooManyUnknownKeys is returned, wrapped in an *UnknownKeysError, for a
// lookup that would read the store for an uncached key while the client
// address, or the instance, has used up its budget of unknown-key reads.
var ErrTooManyUnknownKeys = errors.New("too many unknown keys")

// UnknownKeyLimits are the budgets of store reads for keys that turn out not
// to exist. The key checksum is public, so anyone can make well-formed
// unknown keys, each a store read; these bound what that costs. See the
// cache section of docs/reference.md for the worst case they allow.
type UnknownKeyLimits struct {
	Rate, Burst                 float64 // per client address
	InstanceRate, InstanceBurst float64 // for all addresses together
	Addrs                       int     // addresses tracked (an LRU)
}

// DefaultUnknownKeyLimits: a client that mistypes a key now and then never
// notices; a flood from one address costs 10 reads, then 1 a second; the
// whole instance at most 100, then 50 a second, whatever the addresses.
var DefaultUnknownKeyLimits = UnknownKeyLimits{
	Rate: 1, Burst: 10,
	InstanceRate: 50, InstanceBurst: 100,
	Addrs: 10_000,
}

// UnknownKeys charges store reads of uncached keys to the client address
// and to the instance. A read is charged before it is made and refunded when
// the key exists, so only unknown keys (and reads that fail) use the budget:
// a valid key is never charged, and a cached key is never read at all.
type UnknownKeys struct {
	lim      UnknownKeyLimits
	instance bucket
	addrs    *lru.Cache[string, *bucket]
	mu       sync.Mutex // serializes creating an address's bucket
}

func NewUnknownKeys(lim UnknownKeyLimits) *UnknownKeys {
	addrs, _ := lru.New[string, *bucket](lim.Addrs)
	return &UnknownKeys{lim: lim, addrs: addrs, instance: bucket{tokens: lim.InstanceBurst}}
}

// AddressOf is the budget's name for the client at ip: ip itself, but for
// an IPv6 address its /64, the subnet one host or site is given (RFC 6177):
// a client that holds a /64 has 2^64 addresses to spread a flood over, and
// one budget. An IPv4-mapped address is its IPv4 address; anything else,
// as it is.
func AddressOf(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() || a.Is4In6() {
		if err == nil {
			return a.Unmap().String()
		}
		return ip
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// Charge is one read charged to an address and to the instance.
type Charge struct {
	u    *UnknownKeys
	addr *bucket
}

// UnknownKeysError is ErrTooManyUnknownKeys for the address addr, with the
// time until it has a token, and whose budget ran out: the instance's, for
// all addresses together, or else addr's own.
type UnknownKeysError struct {
	Addr     string
	Retry    time.Duration
	Instance bool
}

func (e *UnknownKeysError) Error() string {
	return ErrTooManyUnknownKeys.Error() + ": retry in " + strconv.FormatFloat(e.Retry.Seconds(), 'f', 3, 64) + "s"
}

func (e *UnknownKeysError) Unwrap() error { return ErrTooManyUnknownKeys }

// Charge takes one token from addr's bucket and one from the instance's, or
// neither and returns an *UnknownKeysError.
func (u *UnknownKeys) Charge(addr string, now time.Time) (*Charge, error) {
	b := u.bucket(addr, now)
	if ok, wait := b.take(now, u.lim.Rate, u.lim.Burst); !ok {
		return nil, &UnknownKeysError{Addr: addr, Retry: wait}
	}
	if ok, wait := u.instance.take(now, u.lim.InstanceRate, u.lim.InstanceBurst); !ok {
		b.give(now, u.lim.Rate, u.lim.Burst)
		return nil, &UnknownKeysError{Addr: addr, Retry: wait, Instance: true}
	}
	return &Charge{u, b}, nil
}

// Refund gives a charge back: the key existed. A nil charge is a no-op.
func (c *Charge) Refund(now time.Time) {
	if c == nil {
		return
	}
	c.addr.give(now, c.u.lim.Rate, c.u.lim.Burst)
	c.u.instance.give(now, c.u.lim.InstanceRate, c.u.lim.InstanceBurst)
}

// bucket returns addr's bucket, creating it full. An address evicted from
// the LRU starts full again: the instance bucket still bounds the reads.
func (u *UnknownKeys) bucket(addr string, now time.Time) *bucket {
	return lruutil.GetOrAdd(u.addrs, &u.mu, addr, func() *bucket { return &bucket{tokens: u.lim.Burst, last: now} })
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
