// Package globallimit enforces rate limits and monthly quotas across all
// instances, on a server that speaks the Redis protocol (Memorystore for
// Redis or Valkey): each request of a limited key is one atomic script,
// one round trip, that checks and takes the key's and its owner's rates
// (GCRA) and quotas together; or, with leases (lease.go), far from the
// limits, one script per block of them, the requests in between admitted
// from the block without a call.
//
// It never fails a request: a call that does not answer within its
// deadline, or fails, is reported to the caller, which applies its
// per-instance limits to that request instead. After openAfter failures in
// a row the limiter leaves the server alone but for one probe a retry
// interval, so that a server that hangs costs a few requests a deadline,
// not every request; one slow answer costs only its own request, and a
// pause of the instance itself none (Limiter.call). It logs a WARNING at
// most every warnInterval, and an INFO when the server answers again after
// one.
package globallimit

import (
	"context"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/limit"
	"github.com/keygate/keygate/internal/ratelimit"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultTimeout is the deadline of one call: about a hundred round trips
// inside a region, and short enough that a hanging server costs a request
// little.
const DefaultTimeout = 50 * time.Millisecond

const (
	// openAfter is how many failures in a row make the limiter leave the
	// server alone.
	openAfter = 3
	// retryInterval is how long the limiter then leaves the server alone;
	// then one request probes it. So global limits resume at most this
	// long after the server answers again.
	retryInterval = 500 * time.Millisecond
	// warnInterval is the least time between two WARNINGs of failures.
	warnInterval = 10 * time.Second
	// pauseSlack is how far past its deadline a call or a wait must end
	// for the limiter to take it for a pause of the instance, not of the
	// server: far more than a timer's lateness on a loaded machine.
	pauseSlack = time.Second
)

// ErrUnavailable is Admit's error when the server did not answer, or is
// being left alone after a failure: apply the per-instance limits.
var ErrUnavailable = errors.New("global limits unavailable")

//go:embed admit.lua
var admitSource string

var admitScript = redis.NewScript(admitSource)

// Options configure a Limiter.
type Options struct {
	// URL is the server's: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], or
	// rediss:// for TLS.
	URL string
	// CA holds the PEM certificates that a rediss:// server's certificate
	// must chain to, instead of the system's roots: Memorystore's in-transit
	// encryption uses a certificate authority of its own.
	CA string
	// Timeout is the deadline of one call; 0 means DefaultTimeout.
	Timeout time.Duration
	// Prefix starts every key the limiter writes, so that deployments can
	// share a server.
	Prefix string
	// Leases makes the limiter admit a key's requests from units of its
	// limits taken in advance, a block at a time (lease.go), instead of one
	// call per request; near a limit, and after a refusal, it asks per
	// request.
	Leases bool
	// Now is the clock of the outage bookkeeping and of the leases' lives
	// on this instance (the limits themselves run on the server's clock,
	// which all instances share); Log receives the WARNINGs.
	Now func() time.Time
	Log *slog.Logger
}

// Limiter is a client of the shared limits. It is safe for concurrent use.
type Limiter struct {
	client  *redis.Client
	timeout time.Duration
	prefix  string
	now     func() time.Time
	log     *slog.Logger

	inARow   atomic.Int64 // failures since the last answer
	down     atomic.Bool  // openAfter failures in a row: probing only
	retryAt  atomic.Int64 // Unix ns before which a down server is not tried
	warnedAt atomic.Int64 // Unix ns of the last WARNING
	warned   atomic.Bool  // a WARNING since the last answer
	failures atomic.Int64 // failures since the last WARNING

	leasing    bool
	id         string // names this instance's block records
	leasesMu   sync.RWMutex
	leases     map[string]*lease // by key ID, at most maxLeases
	roundTrips atomic.Int64
}

// ParseURL checks a server URL as New reads it. Its error never quotes the
// URL, which may hold a password.
func ParseURL(url string) (*redis.Options, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, errors.New("want redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or rediss://… for TLS")
	}
	return o, nil
}

// ParseCA reads PEM certificates, for Options.CA.
func ParseCA(pem string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pem)) {
		return nil, errors.New("want PEM certificates (-----BEGIN CERTIFICATE-----)")
	}
	return pool, nil
}

// Where describes the server of url for people, never with its password:
// HOST:PORT, and "with TLS" for rediss://.
func Where(url string) string {
	o, err := ParseURL(url)
	if err != nil {
		return "(an invalid URL)"
	}
	if o.TLSConfig != nil {
		return o.Addr + " with TLS"
	}
	return o.Addr
}

// New returns a Limiter of the server at o.URL. It does not connect: the
// first call does.
func New(o Options) (*Limiter, error) {
	ro, err := ParseURL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.CA != "" {
		if ro.TLSConfig == nil {
			return nil, errors.New("a certificate authority needs a rediss:// URL")
		}
		if ro.TLSConfig.RootCAs, err = ParseCA(o.CA); err != nil {
			return nil, err
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	// One attempt per call: a script whose answer was lost may have run, and
	// running it again would count the request twice. RESP2 and no client
	// identity: the handshake is AUTH and SELECT at most, which every
	// Redis and Valkey version accepts.
	ro.MaxRetries, ro.DialerRetries = -1, 1
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = o.Timeout, o.Timeout, o.Timeout, o.Timeout
	ro.ContextTimeoutEnabled = true
	ro.Protocol = 2
	ro.DisableIdentity = true
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	quietOnce.Do(func() { redis.SetLogger(quiet{}) })
	l := &Limiter{client: redis.NewClient(ro), timeout: o.Timeout, prefix: o.Prefix, now: o.Now, log: o.Log,
		leasing: o.Leases, id: instanceID(), leases: map[string]*lease{}}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l, nil
}

// quiet discards go-redis's own log lines (a failed dial, printed to stderr
// on every attempt): the limiter reports failures itself, at most every
// warnInterval, as structured WARNINGs. go-redis's logger is one per
// process, so this silences every go-redis client in it.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

// Check reports whether the server answers PING within the limiter's
// deadline, for a program that says at start what its limits will be.
func (l *Limiter) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return l.client.Ping(ctx).Err()
}

// Close gives back the unused units of the quota blocks in hand (one round
// trip, within ctx and the limiter's deadline) and closes the limiter's
// connections. It returns the give-back's error, if any: its units are
// then lost capacity.
func (l *Limiter) Close(ctx context.Context) error {
	err := l.giveBack(ctx)
	l.client.Close()
	return err
}

// RoundTrips is the number of calls the limiter has made to the server.
func (l *Limiter) RoundTrips() int64 { return l.roundTrips.Load() }

// Request is what one request is checked and counted against.
type Request struct {
	KeyID, Owner string
	// KeyRate is the key's own rate limit, OwnerRate its owner's plan's; a
	// PerSecond of 0 means none.
	KeyRate, OwnerRate ratelimit.Rate
	// KeyQuota and OwnerQuota are monthly quotas; 0 means none.
	KeyQuota, OwnerQuota int64
	// KeyUsed and OwnerUsed are what the caller knows was used this month,
	// a lower bound of the truth: the store's month total when last read,
	// plus the requests this instance counted since. A count on the server
	// that is missing (a new month, a flushed or replaced server) or lower
	// (requests admitted by per-instance limits while the server was away)
	// is raised to it: so the server's counts are seeded from, and catch up
	// with, the usage record.
	KeyUsed, OwnerUsed int64
	// Usage, when set, gives KeyUsed and OwnerUsed at At instead, read only
	// for a call to the server: a request admitted from a lease reads
	// nothing. At, when set, is the time of the request on the limiter's
	// clock (Options.Now), which then need not be read again.
	Usage Usage
	At    time.Time
	// Month is the month the quotas count, as the usage record names it
	// (2026-12), and Expiry how long its counts must live: past its end.
	Month  string
	Expiry time.Duration
	// Bucket, when set, names a budget of the owner apart from the data
	// plane's (the Gate's "manage" and "manage-mints"): the request takes
	// from OwnerRate's bucket of that name only, and KeyID, KeyRate and the
	// quotas are ignored.
	Bucket string
}

// Usage is the caller's record of the month's use (the Gate's meter).
type Usage interface {
	Used(keyID, owner string, now time.Time) (keyUsed, ownerUsed int64)
}

// floors reads r's floors from its Usage, for a call.
func (r *Request) floors() {
	if r.Usage != nil {
		r.KeyUsed, r.OwnerUsed = r.Usage.Used(r.KeyID, r.Owner, r.At)
		r.Usage = nil
	}
}

// Limited reports whether r has a limit at all; one without needs no call.
func (r *Request) Limited() bool {
	return r.KeyRate.PerSecond > 0 || r.OwnerRate.PerSecond > 0 || r.KeyQuota > 0 || r.OwnerQuota > 0
}

// Decision is the server's answer to a request: the decision of the rate
// limit that applied, for the RateLimit headers (Rate.Allowed is false only
// for a rate refusal), and of the quotas (Quota.Which is the one that
// refused, None if none did).
type Decision struct {
	Rate, Quota limit.Decision
}

// Allowed reports whether the request may go on; it has then been counted.
func (d *Decision) Allowed() bool { return d.Rate.Allowed && d.Quota.Allowed }

// Admit checks r against the shared limits and, if it passes all of them,
// takes it: one round trip. Its error wraps ErrUnavailable: the server did
// not answer within the timeout (a call whose answer is lost may still have
// counted the request, so the server's counts err high, never low) or is
// being left alone after a failure.
//
// With Options.Leases, a request of a key whose lease has units is
// admitted without a call: see lease.go.
func (l *Limiter) Admit(ctx context.Context, r *Request) (Decision, error) {
	if l.leasing && r.Bucket == "" {
		if need, ok := wants(r); ok {
			return l.admitLeased(ctx, r, need)
		}
	}
	return l.admitOne(ctx, r, nil)
}

// probe reports whether a server being left alone may be tried now: one
// probe a retry interval; the other requests do not wait.
func (l *Limiter) probe() bool {
	n, now := l.retryAt.Load(), l.now().UnixNano()
	return now >= n && l.retryAt.CompareAndSwap(n, now+int64(retryInterval))
}

// admitOne asks the server about r alone: one round trip. With le, r's
// key's lease, the quota units in hand raise the floors, and a refusal
// makes the key's next requests ask one by one too.
func (l *Limiter) admitOne(ctx context.Context, r *Request, le *lease) (Decision, error) {
	if l.down.Load() && !l.probe() {
		return Decision{}, ErrUnavailable
	}
	only := *r
	only.floors()
	r = &only
	if le != nil {
		le.mu.Lock()
		if le.quota.month == r.Month {
			only.KeyUsed += max(0, le.left[keyQuota])
			only.OwnerUsed += max(0, le.left[ownerQuota])
		}
		le.mu.Unlock()
	}
	var d Decision
	err := l.call(ctx, func(ctx context.Context) (err error) {
		d, err = l.run(ctx, r)
		return err
	})
	if err != nil {
		// Not the server's failure: the caller going away, or the Gate
		// closing.
		if !errors.Is(ctx.Err(), context.Canceled) && !errors.Is(err, redis.ErrClosed) {
			l.failed(err)
		}
		return Decision{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l.answered()
	if le != nil && !d.Allowed() {
		le.mu.Lock()
		le.exactTill = l.now().Add(exactFor).UnixNano()
		le.mu.Unlock()
	}
	return d, nil
}

// call makes one call to the server with the limiter's deadline, within
// ctx, and once more with a fresh deadline if the first ended past it by
// more than pauseSlack on the instance's clock: the instance was paused
// (its process stopped, its machine suspended or starved), and its timers
// fired as it woke, whatever the server did. A paused instance is not a
// server outage: its call must neither fall back to the per-instance limits,
// whose view of the quotas is as old as the pause, nor count toward the
// breaker. The first call's answer is lost: whatever it took on the server
// stays taken (a request counted twice, a grant never admitted from), so
// the retry errs toward lost capacity, never toward admitting twice.
func (l *Limiter) call(ctx context.Context, do func(context.Context) error) error {
	for try := 0; ; try++ {
		start := l.now()
		cctx, cancel := context.WithTimeout(ctx, l.timeout)
		l.roundTrips.Add(1)
		err := do(cctx)
		cancel()
		if err == nil || try > 0 || ctx.Err() != nil || !l.paused(start) {
			return err
		}
	}
}

// paused reports whether a call or a wait of the limiter's deadline that
// started at start, and has ended by that deadline, ended so far past it
// that the instance itself was stopped meanwhile. The limiter's clock,
// time.Now's monotonic reading by default, goes on while the process is
// stopped.
func (l *Limiter) paused(start time.Time) bool {
	return l.now().Sub(start) > l.timeout+pauseSlack
}

// answered closes the breaker after an answer.
func (l *Limiter) answered() {
	if l.inARow.Load() != 0 {
		l.inARow.Store(0)
		l.down.Store(false)
		if l.warned.Swap(false) {
			l.log.Info("Redis answers again: global rate limits and quotas apply",
				slog.Int64("failures_since_last_warning", l.failures.Swap(0)))
		}
	}
}

// failed counts a failure, marks the server down until the next probe
// after openAfter in a row, and logs a WARNING unless one was logged less
// than warnInterval ago.
func (l *Limiter) failed(err error) {
	now := l.now()
	if l.inARow.Add(1) >= openAfter {
		l.retryAt.Store(now.Add(retryInterval).UnixNano())
		l.down.Store(true)
	}
	n := l.failures.Add(1)
	last := l.warnedAt.Load()
	if last != 0 && now.UnixNano()-last < int64(warnInterval) || !l.warnedAt.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	l.failures.Add(-n)
	l.warned.Store(true)
	l.log.Warn("Redis unavailable: per-instance rate limits and quotas apply until it answers",
		slog.String("error", err.Error()), slog.Int64("failures", n))
}

// run calls the admission script.
func (l *Limiter) run(ctx context.Context, r *Request) (Decision, error) {
	tag := l.prefix + "{" + r.Owner + "}:"
	keys := []string{
		tag + "rate:key:" + r.KeyID,
		tag + "rate:owner",
		tag + "quota:key:" + r.KeyID + ":" + r.Month,
		tag + "quota:owner:" + r.Month,
	}
	if r.Bucket != "" {
		only := *r
		only.KeyRate, only.KeyQuota, only.OwnerQuota = ratelimit.Rate{}, 0, 0
		r = &only
		keys = []string{tag + r.Bucket + ":unused", tag + r.Bucket, tag + r.Bucket + ":unused", tag + r.Bucket + ":unused"}
	}
	args := []any{
		interval(r.KeyRate), r.KeyRate.Burst, interval(r.OwnerRate), r.OwnerRate.Burst,
		r.KeyQuota, r.OwnerQuota, r.KeyUsed, r.OwnerUsed,
		max(1, int64(r.Expiry/time.Second)),
	}
	v, err := admitScript.Run(ctx, l.client, keys, args...).Int64Slice()
	if err != nil {
		return Decision{}, err
	}
	if len(v) != 9 {
		return Decision{}, fmt.Errorf("admission script answered %d values, want 9", len(v))
	}
	whose := func(n int64) limit.Which {
		switch n {
		case 1:
			return limit.Key
		case 2:
			return limit.Owner
		}
		return limit.None
	}
	d := Decision{
		Rate: limit.Decision{
			Allowed:   v[0] == 1 || v[6] != 0, // a quota refusal passed the rates
			Which:     whose(v[1]),
			Limit:     v[2],
			Remaining: v[3],
			Reset:     (v[4] + int64(time.Second/time.Microsecond) - 1) / int64(time.Second/time.Microsecond),
		},
		Quota: limit.Decision{Allowed: v[6] == 0},
	}
	if !d.Quota.Allowed {
		d.Quota.Which, d.Quota.Limit, d.Quota.Remaining = whose(v[6]), v[8], v[8]-v[7]
	}
	if !d.Rate.Allowed {
		d.Rate.RetryAfter = time.Duration(v[5]) * time.Microsecond
	}
	return d, nil
}

// interval is rate r's emission interval in microseconds, "0" for none, in
// full precision.
func interval(r ratelimit.Rate) string {
	if !(r.PerSecond > 0) {
		return "0"
	}
	return strconv.FormatFloat(1e6/r.PerSecond, 'g', -1, 64)
}
