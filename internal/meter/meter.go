// Package meter counts the requests of keys and of their owners, enforces
// their monthly quotas on the instance, and writes the counts to a
// store.UsageStore in batches, each applied exactly once.
package meter

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/limit"
)

// ErrShuttingDown is Admit's answer once Close has begun: the request is not
// counted, and must not be served as if it were.
var ErrShuttingDown = errors.New("shutting down")

// Meter admits and counts the requests of keys, per UTC day, and persists the
// counts in batches: at most once per flush interval, in the background, so
// that no request waits for the store.
//
// Three promises rest on it, and each is kept by one mechanism:
//
//   - Exact quotas on one instance: Admit checks the quotas of a request's
//     key and of its owner and counts the request against both in one step
//     under one lock, so concurrent requests cannot all pass a check that
//     only one of them should.
//   - Nothing counted is lost or counted twice: a batch, once sent, keeps
//     its identity (instance, seq) and is sent again as it was until the
//     store acknowledges it, and the store applies each batch at most once.
//     A failed attempt never proves that an earlier one did not commit (its
//     answer may have been lost), so a batch's counts are never sent under
//     another seq. An outage leaves one batch in doubt and one map of
//     counts, not a queue.
//   - Every admitted request is stored, whatever the shutdown: Close refuses
//     admissions from then on, waits for the admitted requests to finish, and
//     then flushes, retrying with backoff until its deadline; what is still
//     unwritten then goes to the log as usage_unwritten entries, which
//     Replay writes, idempotently, later (unwritten.go).
//
// Memory: pending holds one entry per key and day counted since the last
// successful flush; tallies one per key and per owner with a quota state,
// dropped once persisted and idle for longer than any cached key or owner
// plan can be used unrefreshed.
type Meter struct {
	store    store.UsageStore
	now      func() time.Time
	log      *slog.Logger
	interval time.Duration
	idle     time.Duration // a persisted tally untouched this long is dropped
	instance string        // this process's meter ID in the store

	// counters count the requests of keys without a quota, lock-free
	// (counter.go); flushes and quota checks move their counts into pending.
	counters sync.Map // key ID → *counter

	mu      sync.Mutex
	pending map[meterKey]int64       // counted, not yet sent
	tallies map[tallyKey]*monthTally // this month's quota states
	// reads are the usage reads under way (ReadUsage), one each: bounded
	// by the requests in flight.
	reads map[*usageRead]struct{}

	nextFlush atomic.Int64 // Unix ns before which no flush starts on a request
	flushing  atomic.Bool
	closed    atomic.Bool
	inflight  atomic.Int64  // admitted requests not yet done
	drained   chan struct{} // closed once closed and inflight is 0
	drainOnce sync.Once

	// turn is held by a flush, and by a read that must see the store and the
	// counts consistently (quota bases; usage reports only when a batch of
	// theirs is in doubt, see ReadUsage): while it is held, no batch
	// commits. A channel, so that waiting for it honours a context.
	turn chan struct{}
	// inDoubt is the batch sent, or being sent, whose outcome is unknown:
	// retried first, unchanged. Set and cleared under both the turn and mu.
	inDoubt  *usageBatch
	batchSeq int64
	// unwritten counts the batches logged as usage_unwritten (unwritten.go).
	unwritten atomic.Int64
}

// meterKey is a key, its owner and a UTC day, as days since 1970-01-01.
type meterKey struct {
	id, owner string
	day       int64
}

// tallyKey names a quota state: a key's (by ID) or an owner's.
type tallyKey struct {
	owner bool
	name  string
}

// monthTally is a key's or an owner's quota state on this instance for one
// month.
type monthTally struct {
	month     int64 // year*12 + month-1
	counted   int64 // requests admitted this month
	persisted int64 // of those, the ones the store holds
	// base is the month total that the store held at the last read,
	// and mark how many of this instance's counts it held then.
	base, mark int64
	touched    time.Time // last admission or read
}

// used is the key's requests this month as this instance knows them: the
// stored total at the last read, plus what this instance admitted since.
// A nil tally has used nothing.
func (t *monthTally) used() int64 {
	if t == nil {
		return 0
	}
	return t.base + t.counted - t.mark
}

// usageBatch is one AddUsage call.
type usageBatch struct {
	seq    int64
	counts []store.UsageCount
}

// holds reports whether b holds counts of the key id or of owner.
func (b *usageBatch) holds(id, owner string) bool {
	for _, c := range b.counts {
		if c.KeyID == id || c.Owner == owner {
			return true
		}
	}
	return false
}

// Options configure a Meter.
type Options struct {
	// Store receives the counts; it bounds each call (store.WithTimeout).
	Store store.UsageStore
	// Interval is the least time between two flushes.
	Interval time.Duration
	// Idle is how long quota state unused is kept. It must exceed the
	// longest a cached key is used without a refresh, which reads the base
	// again.
	Idle time.Duration
	// Now is the clock, time.Now if nil; Log receives the WARNINGs,
	// slog.Default() if nil.
	Now func() time.Time
	Log *slog.Logger
}

// New returns a meter that persists into o.Store at most once per
// o.Interval.
func New(o Options) *Meter {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	var id [8]byte
	crand.Read(id[:])
	m := &Meter{
		store:    o.Store,
		now:      o.Now,
		log:      o.Log,
		interval: o.Interval,
		idle:     o.Idle,
		instance: o.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(id[:]),
		pending:  make(map[meterKey]int64),
		tallies:  make(map[tallyKey]*monthTally),
		reads:    make(map[*usageRead]struct{}),
		drained:  make(chan struct{}),
		turn:     make(chan struct{}, 1),
	}
	m.nextFlush.Store(o.Now().Add(o.Interval).UnixNano())
	return m
}

// dayIndex is t's UTC day as days since 1970-01-01, and dayOfIndex the
// reverse.
func dayIndex(t time.Time) int64     { return t.Unix() / 86400 }
func dayOfIndex(day int64) store.Day { return store.DayOf(time.Unix(day*86400, 0)) }

// monthIndex is t's UTC month as year*12 + month-1.
func monthIndex(t time.Time) int64 {
	y, m, _ := t.UTC().Date()
	return int64(y)*12 + int64(m) - 1
}

// Admission is what a request counts against: its key and the key's owner,
// each with a monthly quota (0 means none).
type Admission struct {
	KeyID, Owner         string
	KeyQuota, OwnerQuota int64
}

// Admit counts one request at now against its key and owner and returns
// the quotas' decision: allowed, or refused by the key's quota or else its
// owner's (Which), with that quota (Limit) and what is left of it
// (Remaining, 0 or less). It fails only once Close has begun
// (ErrShuttingDown). An admitted request must call Done when it has been
// answered. It may start a background flush.
//
// A request with no quota to check takes no lock: it adds one to its key's
// counter. The others check and count under the meter's lock, in one step,
// so that concurrent requests cannot all pass a check that only one of them
// should.
func (m *Meter) Admit(a Admission, now time.Time) (limit.Decision, error) {
	m.inflight.Add(1)
	if m.closed.Load() { // after the Add: see Close
		m.Done()
		return limit.Decision{}, ErrShuttingDown
	}
	day := dayIndex(now)
	if a.KeyQuota == 0 && a.OwnerQuota == 0 {
		if c := m.counter(a.KeyID); c != nil && c.owner == a.Owner && c.add(day) {
			m.maybeFlush(now)
			return limit.Decision{Allowed: true}, nil
		}
	}
	m.mu.Lock()
	if a.KeyQuota == 0 && a.OwnerQuota == 0 {
		m.startCounter(a.KeyID, a.Owner, day) // its next requests take no lock
		m.mu.Unlock()
		m.maybeFlush(now)
		return limit.Decision{Allowed: true}, nil
	}
	month := monthIndex(now)
	kt := m.tally(tallyKey{false, a.KeyID}, month, a.KeyQuota > 0)
	// Owners always keep one, so that a quota their plan gains later counts
	// what this instance admitted before it; keys only with a quota.
	ot := m.tally(tallyKey{true, a.Owner}, month, true)
	// What the key counted lock-free, before it or its owner had a quota,
	// counts against the quota now.
	m.harvest(a.KeyID, now)
	for _, q := range []struct {
		t     *monthTally
		quota int64
		which limit.Which
	}{{kt, a.KeyQuota, limit.Key}, {ot, a.OwnerQuota, limit.Owner}} {
		if used := q.t.used(); q.quota > 0 && used >= q.quota {
			m.mu.Unlock()
			m.Done()
			return limit.Decision{Which: q.which, Limit: q.quota, Remaining: q.quota - used}, nil
		}
	}
	for _, t := range []*monthTally{kt, ot} {
		if t != nil {
			t.counted++
			t.touched = now
		}
	}
	m.pending[meterKey{a.KeyID, a.Owner, day}]++
	m.mu.Unlock()
	m.maybeFlush(now)
	return limit.Decision{Allowed: true}, nil
}

// tally returns the quota state of k for month, starting it afresh in a
// new month; nil if it has none and create is false (keys and owners without
// a quota keep none). m.mu must be held.
func (m *Meter) tally(k tallyKey, month int64, create bool) *monthTally {
	t := m.tallies[k]
	if t == nil && !create {
		return nil
	}
	if t == nil || t.month != month {
		t = &monthTally{month: month}
		m.tallies[k] = t
	}
	return t
}

// Done marks a request that Admit admitted as answered.
func (m *Meter) Done() {
	if m.inflight.Add(-1) == 0 && m.closed.Load() {
		m.drainOnce.Do(func() { close(m.drained) })
	}
}

// maybeFlush starts a flush in the background if one is due at now and none
// is running.
func (m *Meter) maybeFlush(now time.Time) {
	if now.UnixNano() >= m.nextFlush.Load() && m.flushing.CompareAndSwap(false, true) {
		m.nextFlush.Store(now.Add(m.interval).UnixNano())
		go m.claimedFlush(context.Background())
	}
}

// claimedFlush runs the flush that maybeFlush or Run claimed.
func (m *Meter) claimedFlush(ctx context.Context) {
	m.Flush(ctx)
	m.flushing.Store(false)
}

// takeTurn waits for the meter's turn: no batch commits until releaseTurn.
func (m *Meter) takeTurn(ctx context.Context) error {
	select {
	case m.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the usage flush: %w", ctx.Err())
	}
}

func (m *Meter) releaseTurn() { <-m.turn }

// Flush persists every count made so far: first the batch in doubt, if any,
// then the pending counts. It stops at the first failure, which it returns;
// the counts stay for the next flush.
func (m *Meter) Flush(ctx context.Context) error {
	if err := m.takeTurn(ctx); err != nil {
		return err
	}
	defer m.releaseTurn()
	if err := m.settle(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	m.harvestAll(m.now(), true)
	m.mu.Unlock()
	for {
		m.mu.Lock()
		counts := make([]store.UsageCount, 0, min(len(m.pending), store.MaxUsageBatch))
		for k, n := range m.pending {
			if len(counts) == store.MaxUsageBatch {
				break
			}
			counts = append(counts, store.UsageCount{KeyID: k.id, Owner: k.owner, Day: dayOfIndex(k.day), Requests: n})
			delete(m.pending, k)
		}
		if len(counts) == 0 {
			// Once a flush, not once a batch: a walk of every tally
			// under the lock that Admit needs.
			m.pruneTallies(m.now())
			m.mu.Unlock()
			return nil
		}
		// In doubt from here, under mu: a usage read never finds counts
		// in neither pending nor the batch.
		m.batchSeq++
		m.inDoubt = &usageBatch{seq: m.batchSeq, counts: counts}
		m.mu.Unlock()
		if err := m.settle(ctx); err != nil {
			return err
		}
	}
}

// settle sends the batch in doubt, if any: stored, the tallies learn it;
// any error, it stays in doubt, unchanged, for the next attempt. No error
// can send its counts back to pending, not even one that proves this
// attempt applied nothing: an earlier attempt may have committed and lost
// its answer, and only this batch's seq lets the store recognise that. The
// caller holds the turn.
func (m *Meter) settle(ctx context.Context) error {
	b := m.inDoubt
	if b == nil {
		return nil
	}
	m.mu.Lock()
	for r := range m.reads {
		if b.holds(r.id, r.owner) {
			r.spoiled = true // it may commit while r reads the store
		}
	}
	m.mu.Unlock()
	err := m.store.AddUsage(ctx, m.instance, b.seq, b.counts)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.inDoubt = nil
		if bad := keyrules.UncountedOwners(b.counts); len(bad) > 0 {
			m.log.Warn("usage of owners that are not valid document IDs counted for their keys only",
				slog.Any("owners", bad))
		}
		for _, c := range b.counts {
			day, _ := time.Parse(time.DateOnly, string(c.Day))
			for _, k := range []tallyKey{{false, c.KeyID}, {true, c.Owner}} {
				if t := m.tallies[k]; t != nil && t.month == monthIndex(day) {
					t.persisted += c.Requests
				}
			}
		}
		return nil
	}
	m.log.Warn("usage flush failed: counts kept for the next flush",
		slog.Int("pending_counts", len(m.pending)), slog.Int64("batch_in_doubt", b.seq),
		slog.String("error", err.Error()))
	return err
}

// pruneTallies drops the quota state that no longer matters: tallies of past
// months, and of keys idle for m.idle, once the store holds all they
// counted. A key dropped while idle is read again before it is next used,
// since no cache entry outlives m.idle. m.mu must be held.
func (m *Meter) pruneTallies(now time.Time) {
	month := monthIndex(now)
	for k, t := range m.tallies {
		if t.persisted == t.counted && (t.month != month || now.Sub(t.touched) >= m.idle) {
			delete(m.tallies, k)
		}
	}
}

// ReadMonth sets the quota base of the key id from the store's month total.
func (m *Meter) ReadMonth(ctx context.Context, id string, now time.Time) error {
	return m.ReadMonthWith(ctx, id, now, func(ctx context.Context) (int64, error) {
		return m.store.MonthlyUsage(ctx, id, store.MonthOf(now))
	})
}

// ReadMonthWith is ReadMonth with the month total from read, for a caller
// that reads it along with the key.
func (m *Meter) ReadMonthWith(ctx context.Context, id string, now time.Time, read func(context.Context) (int64, error)) error {
	return m.readBase(ctx, tallyKey{false, id}, now, read)
}

// ReadOwnerMonth sets the quota base of the owner from the store's month
// total of all its keys.
func (m *Meter) ReadOwnerMonth(ctx context.Context, owner string, now time.Time) error {
	return m.ReadOwnerMonthWith(ctx, owner, now, func(ctx context.Context) (int64, error) {
		return m.store.OwnerMonthlyUsage(ctx, owner, store.MonthOf(now))
	})
}

// ReadOwnerMonthWith is ReadOwnerMonth with the month total from read, for a
// caller that reads it along with other documents.
func (m *Meter) ReadOwnerMonthWith(ctx context.Context, owner string, now time.Time, read func(context.Context) (int64, error)) error {
	return m.readBase(ctx, tallyKey{true, owner}, now, read)
}

// readBase sets k's quota base from read, done while no batch commits, so
// that the base and this instance's counts neither overlap nor leave a gap.
// A batch in doubt is settled first; if it stays in doubt the base may
// include it, and the quota refuses that many requests early rather than
// late.
func (m *Meter) readBase(ctx context.Context, k tallyKey, now time.Time, read func(context.Context) (int64, error)) error {
	if err := m.takeTurn(ctx); err != nil {
		return err
	}
	defer m.releaseTurn()
	m.settle(ctx) // best effort: see above
	month := monthIndex(now)
	m.mu.Lock()
	if k.owner {
		m.harvestAll(now, false) // its keys' counts, wherever they are
	} else {
		m.harvest(k.name, now)
	}
	var mark int64
	if t := m.tallies[k]; t != nil && t.month == month {
		mark = t.persisted
	}
	m.mu.Unlock()
	base, err := read(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	t := m.tally(k, month, true)
	t.base, t.mark, t.touched = base, mark, now
	m.mu.Unlock()
	return nil
}

// ReadUsage calls read, which reads stored usage of the key id and of its
// owner, and returns this instance's counts that the store does not hold:
// the key's by day, and the owner's by day. A request admitted before
// ReadUsage is in exactly one of the two. It fails if a batch with counts
// of the key or owner stays in doubt, since the store may or may not hold
// it.
//
// It holds no lock across read, so that usage reads, of any owner, wait
// for none of each other's store calls: it takes the counts (usageRead),
// reads, and checks that no batch with the key's or owner's counts began
// committing meanwhile (settle marks it spoiled); if one did, the store
// may hold those counts or not, and it reads again, up to usageReadTries
// times. After that (batches of its key committing all the time, or a
// store slower than the flush interval) it reads holding the meter's turn,
// as a flush does, so that it ends.
func (m *Meter) ReadUsage(ctx context.Context, id, owner string, read func(context.Context) error) (key, ownerDays map[store.Day]int64, err error) {
	for range usageReadTries {
		r, err := m.startRead(ctx, id, owner)
		if err != nil {
			return nil, nil, err
		}
		err = read(ctx)
		m.mu.Lock()
		delete(m.reads, r)
		spoiled := r.spoiled
		m.mu.Unlock()
		if err != nil {
			return nil, nil, err
		}
		if !spoiled {
			return r.key, r.ownerDays, nil
		}
	}
	if err := m.takeTurn(ctx); err != nil {
		return nil, nil, err
	}
	defer m.releaseTurn()
	if err := m.settle(ctx); err != nil {
		return nil, nil, err
	}
	m.mu.Lock()
	r := m.unstored(id, owner)
	m.mu.Unlock()
	return r.key, r.ownerDays, read(ctx)
}

// usageReadTries is how many times ReadUsage reads without the turn.
const usageReadTries = 3

// usageRead is a ReadUsage's counts of a key and its owner not in the
// store, taken before its read of the store: valid unless spoiled.
type usageRead struct {
	id, owner      string
	key, ownerDays map[store.Day]int64
	// spoiled is set, under m.mu, when a batch with counts of the key or
	// owner starts committing during the read.
	spoiled bool
}

// startRead takes the counts of the key id and of owner that the store
// does not hold, and registers the read in m.reads, to be spoiled by a
// batch of theirs that starts committing. A batch of theirs in doubt (being
// sent, or its outcome unknown) must be settled first, under the turn: the
// store may or may not hold it. Other batches do not matter to this read.
func (m *Meter) startRead(ctx context.Context, id, owner string) (*usageRead, error) {
	m.mu.Lock()
	if b := m.inDoubt; b == nil || !b.holds(id, owner) {
		defer m.mu.Unlock()
		return m.register(id, owner), nil
	}
	m.mu.Unlock()
	if err := m.takeTurn(ctx); err != nil {
		return nil, err
	}
	defer m.releaseTurn()
	if err := m.settle(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.register(id, owner), nil
}

// register takes the counts of a read and adds it to m.reads. m.mu must
// be held.
func (m *Meter) register(id, owner string) *usageRead {
	r := m.unstored(id, owner)
	m.reads[r] = struct{}{}
	return r
}

// unstored returns the pending counts of the key id and of owner, by day,
// what a batch in doubt holds aside. m.mu must be held.
func (m *Meter) unstored(id, owner string) *usageRead {
	r := &usageRead{id: id, owner: owner, key: make(map[store.Day]int64), ownerDays: make(map[store.Day]int64)}
	m.harvestAll(m.now(), false)
	for k, n := range m.pending {
		if k.id == id {
			r.key[dayOfIndex(k.day)] += n
		}
		if k.owner == owner {
			r.ownerDays[dayOfIndex(k.day)] += n
		}
	}
	return r
}

// Close ends admissions (Admit answers ErrShuttingDown from now on), waits
// for the admitted requests to be answered, and writes every count,
// retrying a failed flush with backoff until ctx ends. Whatever is still
// unwritten then, the batch in doubt and the counts not yet sent, it hands
// to the log (logUnwritten) and drops, so that only Replay writes it, once;
// its error then says so. It may be called more than once, also
// concurrently: the counts go to the store or to the log, never to both.
func (m *Meter) Close(ctx context.Context) error {
	m.closed.Store(true)
	// Admit adds to inflight before it looks at closed, and this looks at
	// inflight after it sets closed: so either Admit refuses, or this sees
	// the request and waits for its Done.
	if m.inflight.Load() == 0 {
		m.drainOnce.Do(func() { close(m.drained) })
	}
	var err error
	select {
	case <-m.drained:
		err = m.flushUntil(ctx)
	case <-ctx.Done():
		// The requests still running were counted when admitted.
		err = fmt.Errorf("waiting for requests to finish: %w", ctx.Err())
	}
	if err != nil {
		m.logUnwritten()
	}
	// Whichever Close logged them, every caller learns of it.
	if n := m.unwritten.Load(); n > 0 {
		batches := "batches"
		if n == 1 {
			batches = "batch"
		}
		return fmt.Errorf("usage not written: %d %s logged as %s for apikey usage replay: %w", n, batches, UnwrittenKey, cmp.Or(err, ErrShuttingDown))
	}
	return nil
}

// Backoff between Close's flushes: doubled from the first to the most, each
// wait drawn at random from its upper half, so that instances stopped
// together by one outage do not retry in step.
const (
	firstRetry = 50 * time.Millisecond
	mostRetry  = time.Second
)

// flushUntil flushes until every count is stored or ctx ends, and returns
// the last flush's error.
func (m *Meter) flushUntil(ctx context.Context) error {
	wait := firstRetry
	for {
		err := m.Flush(ctx)
		if err == nil {
			return nil
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait = min(2*wait, mostRetry)
	}
}

// Run flushes every interval, unless requests have started a flush since,
// until ctx ends. The last flush is Close's.
func (m *Meter) Run(ctx context.Context) {
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if m.flushing.CompareAndSwap(false, true) {
				m.nextFlush.Store(m.now().Add(m.interval).UnixNano())
				m.claimedFlush(ctx)
			}
		case <-ctx.Done():
			return
		}
	}
}

// sizes returns the number of pending counts and quota tallies held.
func (m *Meter) sizes() (pending, tallies, counters int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counters.Range(func(any, any) bool { counters++; return true })
	return len(m.pending), len(m.tallies), counters
}
