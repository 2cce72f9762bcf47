package meter

import (
	"sync/atomic"
	"time"
)

// A counter counts the requests of one key without a quota on one UTC day,
// lock-free: the day and the count share one word, so that a request adds
// one with a single compare-and-swap, and a count never lands on another
// day than the one it was made on. Flushes, quota checks and usage reads
// take the counts out (harvest) into pending, under the meter's lock.
type counter struct {
	owner string
	v     atomic.Uint64 // day<<countBits | count; dead once dropped
	idle  bool          // no count at the last harvest; under Meter.mu
}

const (
	countBits = 40 // 10^12 requests between two harvests
	countMask = 1<<countBits - 1
	// dead marks a counter dropped from the meter: its day matches no day,
	// so every add fails and takes the locked path, which replaces it.
	dead = ^uint64(0)
)

func pack(day int64, n uint64) uint64 { return uint64(day)<<countBits | n }

// add counts one request on day, unless the counter is on another day (or
// dead): then it returns false and the caller takes the locked path.
func (c *counter) add(day int64) bool {
	for {
		old := c.v.Load()
		if old == dead || int64(old>>countBits) != day {
			return false
		}
		if c.v.CompareAndSwap(old, old+1) {
			return true
		}
	}
}

// take takes the counter's count out, leaving its day: the requests
// counted since the last take, and their day.
func (c *counter) take() (n uint64, day int64) {
	for {
		old := c.v.Load()
		if old == dead || old&countMask == 0 {
			return 0, 0
		}
		if c.v.CompareAndSwap(old, old&^countMask) {
			return old & countMask, int64(old >> countBits)
		}
	}
}

// counter returns the counter of the key with ID id, or nil.
func (m *Meter) counter(id string) *counter {
	if c, ok := m.counters.Load(id); ok {
		return c.(*counter)
	}
	return nil
}

// startCounter counts one request of the key id of owner on day in its
// counter, creating it or moving it to day (the counts of its old day are
// booked first). m.mu must be held.
func (m *Meter) startCounter(id, owner string, day int64) {
	if c := m.counter(id); c != nil && c.owner == owner {
		for {
			old := c.v.Load()
			if old == dead {
				break
			}
			next := pack(day, 1)
			if int64(old>>countBits) == day {
				next = old + 1
			}
			if c.v.CompareAndSwap(old, next) {
				if int64(old>>countBits) != day {
					m.book(id, owner, int64(old>>countBits), old&countMask, time.Time{})
				}
				return
			}
		}
	} else if c != nil {
		m.drop(id, c) // a key document edited to another owner
	}
	c := &counter{owner: owner}
	c.v.Store(pack(day, 1))
	m.counters.Store(id, c)
}

// drop books what c holds and removes it. m.mu must be held.
func (m *Meter) drop(id string, c *counter) {
	old := c.v.Swap(dead)
	if old != dead {
		m.book(id, c.owner, int64(old>>countBits), old&countMask, time.Time{})
	}
	m.counters.CompareAndDelete(id, c)
}

// harvest books the counts of the key id's counter. m.mu must be held.
func (m *Meter) harvest(id string, now time.Time) {
	if c := m.counter(id); c != nil {
		if n, day := c.take(); n > 0 {
			m.book(id, c.owner, day, n, now)
		}
	}
}

// harvestAll books the counts of every counter. With prune, it also drops
// the counters that counted nothing since the last two harvests, so that
// they are bounded by the keys in use. m.mu must be held.
func (m *Meter) harvestAll(now time.Time, prune bool) {
	m.counters.Range(func(k, v any) bool {
		id, c := k.(string), v.(*counter)
		n, day := c.take()
		switch {
		case n > 0:
			m.book(id, c.owner, day, n, now)
			c.idle = false
		case !prune:
		case c.idle:
			// Only if it is still empty: a request may have counted since.
			if old := c.v.Load(); old&countMask == 0 && c.v.CompareAndSwap(old, dead) {
				m.counters.CompareAndDelete(id, c)
			}
		default:
			c.idle = true
		}
		return true
	})
}

// book adds n requests of key id of owner on day to pending, and to the
// tallies of that month: the owner's, and the key's if it has one. A zero
// now leaves the tallies' touched time. m.mu must be held.
func (m *Meter) book(id, owner string, day int64, n uint64, now time.Time) {
	if n == 0 {
		return
	}
	m.pending[meterKey{id, owner, day}] += int64(n)
	month := monthIndex(time.Unix(day*86400, 0))
	for _, k := range []tallyKey{{true, owner}, {false, id}} {
		t := m.tallies[k]
		switch {
		case t == nil && !k.owner:
			continue // keys without a quota keep no tally
		case t == nil || t.month < month:
			t = &monthTally{month: month, touched: now}
			m.tallies[k] = t
		case t.month > month:
			continue // a past month's counts: its quota is over
		}
		t.counted += int64(n)
		if !now.IsZero() {
			t.touched = now
		}
	}
}
