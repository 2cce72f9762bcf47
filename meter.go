package keygate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"
)

// Meter counts the requests each key makes, per UTC day, and persists the
// counts in batches: at most once per flush interval, in the background, so
// that no request waits for the store. A batch that fails stays pending and
// is retried, as it was, until the store takes it; the store applies each
// batch at most once, so a retry after an unknown outcome cannot count twice.
//
// It also knows, for quotas, how many requests this instance has counted for
// a key in the current month, and how many of those the store holds.
type Meter struct {
	store    UsageStore
	now      func() time.Time
	log      *slog.Logger
	interval time.Duration
	timeout  time.Duration
	instance string // this process's meter ID in the store

	mu        sync.Mutex
	pending   map[meterKey]int64     // counted, not yet in a batch
	months    map[string]*monthTally // by key ID: this month's tally
	lastFlush time.Time              // when the last flush started
	flushing  bool

	flushMu  sync.Mutex   // one flush at a time
	unsent   []usageBatch // batches not yet known to be stored, oldest first
	batchSeq int64
}

// meterKey is a key and UTC day, as days since 1970-01-01.
type meterKey struct {
	id  string
	day int64
}

// monthTally is what this instance counted for a key in one month.
type monthTally struct {
	month     int64 // year*12 + month-1
	counted   int64 // requests counted
	persisted int64 // of those, the ones the store holds
}

// usageBatch is one AddUsage call.
type usageBatch struct {
	seq    int64
	counts []UsageCount
}

// NewMeter returns a meter that persists into store at most once per
// interval, each call bounded by timeout.
func NewMeter(store UsageStore, interval, timeout time.Duration, now func() time.Time, log *slog.Logger) *Meter {
	var id [8]byte
	rand.Read(id[:])
	return &Meter{
		store:     store,
		now:       now,
		log:       log,
		interval:  interval,
		timeout:   timeout,
		instance:  now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(id[:]),
		pending:   make(map[meterKey]int64),
		months:    make(map[string]*monthTally),
		lastFlush: now(),
	}
}

// dayIndex is t's UTC day as days since 1970-01-01, and dayOfIndex the
// reverse.
func dayIndex(t time.Time) int64 { return t.Unix() / 86400 }
func dayOfIndex(day int64) Day   { return DayOf(time.Unix(day*86400, 0)) }

// monthIndex is t's UTC month as year*12 + month-1.
func monthIndex(t time.Time) int64 {
	y, m, _ := t.UTC().Date()
	return int64(y)*12 + int64(m) - 1
}

// Count counts one request of the key id at time now, and starts a
// background flush if the last one started an interval ago or more.
func (m *Meter) Count(id string, now time.Time) {
	day := dayIndex(now)
	month := monthIndex(now)
	m.mu.Lock()
	m.pending[meterKey{id, day}]++
	t := m.months[id]
	if t == nil || t.month != month {
		t = &monthTally{month: month}
		m.months[id] = t
	}
	t.counted++
	start := m.claimFlush(now)
	m.mu.Unlock()
	if start {
		go m.claimedFlush(context.Background())
	}
}

// claimFlush reports whether a flush is due at now and none is running; if
// so, the caller must run claimedFlush. m.mu must be held.
func (m *Meter) claimFlush(now time.Time) bool {
	if m.flushing || now.Sub(m.lastFlush) < m.interval {
		return false
	}
	m.flushing, m.lastFlush = true, now
	return true
}

// claimedFlush runs the flush that claimFlush granted.
func (m *Meter) claimedFlush(ctx context.Context) {
	m.Flush(ctx)
	m.mu.Lock()
	m.flushing = false
	m.mu.Unlock()
}

// MonthUsage returns what this instance has counted for the key id in the
// month of now, and how many of those the store holds.
func (m *Meter) MonthUsage(id string, now time.Time) (counted, persisted int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.months[id]; t != nil && t.month == monthIndex(now) {
		return t.counted, t.persisted
	}
	return 0, 0
}

// Flush persists every count made so far: the batches a failed flush left,
// then the new counts. It stops at the first failure, which it returns; the
// counts stay for the next flush.
func (m *Meter) Flush(ctx context.Context) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.mu.Lock()
	counts := make([]UsageCount, 0, len(m.pending))
	for k, n := range m.pending {
		counts = append(counts, UsageCount{KeyID: k.id, Day: dayOfIndex(k.day), Requests: n})
	}
	clear(m.pending)
	m.mu.Unlock()
	for len(counts) > 0 {
		n := min(len(counts), MaxUsageBatch)
		m.batchSeq++
		m.unsent = append(m.unsent, usageBatch{seq: m.batchSeq, counts: counts[:n]})
		counts = counts[n:]
	}
	for len(m.unsent) > 0 {
		b := m.unsent[0]
		callCtx, cancel := context.WithTimeout(ctx, m.timeout)
		err := m.store.AddUsage(callCtx, m.instance, b.seq, b.counts)
		cancel()
		if err != nil {
			pending := 0
			for _, b := range m.unsent {
				pending += len(b.counts)
			}
			m.log.Warn("usage flush failed: counts kept for the next flush",
				slog.Int("pending_counts", pending), slog.String("error", err.Error()))
			return err
		}
		m.unsent = m.unsent[1:]
		m.mu.Lock()
		for _, c := range b.counts {
			day, _ := time.Parse(time.DateOnly, string(c.Day))
			if t := m.months[c.KeyID]; t != nil && t.month == monthIndex(day) {
				t.persisted += c.Requests
			}
		}
		m.mu.Unlock()
	}
	return nil
}

// Run flushes every interval, unless requests have started a flush since,
// until ctx ends. The last flush is the caller's (Server.Close).
func (m *Meter) Run(ctx context.Context) {
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			m.mu.Lock()
			start := m.claimFlush(m.now())
			m.mu.Unlock()
			if start {
				m.claimedFlush(ctx)
			}
		case <-ctx.Done():
			return
		}
	}
}

// Unflushed returns this instance's counts for the key id that the store
// does not hold yet, by day.
func (m *Meter) Unflushed(id string) map[Day]int64 {
	out := make(map[Day]int64)
	m.flushMu.Lock() // unsent belongs to the flush
	for _, b := range m.unsent {
		for _, c := range b.counts {
			if c.KeyID == id {
				out[c.Day] += c.Requests
			}
		}
	}
	m.flushMu.Unlock()
	m.mu.Lock()
	for k, n := range m.pending {
		if k.id == id {
			out[dayOfIndex(k.day)] += n
		}
	}
	m.mu.Unlock()
	return out
}
