package apikey

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/limit"
)

// usageReadsPerOwner bounds one owner's usage reports being read from the
// store at once on an instance; the owner's others wait their turn, at
// most STORE_TIMEOUT (then 429 rate_limited, limit management). No lock is
// shared between owners (the meter's read takes none across the store's
// calls), but the store is: 100 reports of 92 days at once by one key put
// another owner's report behind 300 queries, 0.3 s to 1.4 s at the 99th
// percentile on the emulator with 4 turns an owner, 0.3 s to 0.7 s with 2.
// A burst so costs its own owner: its reports queue behind each other, and
// the store, and other owners, see at most 2 of them (6 queries). 2 a
// second at 0.5 s a report is more than a key's management limit.
const usageReadsPerOwner = 2

// usageSlots are the owners' turns at the store for usage reports.
type usageSlots struct {
	mu     sync.Mutex
	owners map[string]*ownerSlots // owners with reports in flight or waiting: bounded by the requests
}

// ownerSlots is one owner's turns: a slot per report at the store.
type ownerSlots struct {
	slots chan struct{}
	users int // reports holding or waiting for a slot; guarded by usageSlots.mu
}

func newUsageSlots() *usageSlots { return &usageSlots{owners: make(map[string]*ownerSlots)} }

// take waits for one of owner's slots, at most wait or until ctx ends, and
// returns its release, or an error wrapping context.DeadlineExceeded or
// ctx's error.
func (u *usageSlots) take(ctx context.Context, owner string, wait time.Duration) (release func(), err error) {
	u.mu.Lock()
	o := u.owners[owner]
	if o == nil {
		o = &ownerSlots{slots: make(chan struct{}, usageReadsPerOwner)}
		u.owners[owner] = o
	}
	o.users++
	u.mu.Unlock()
	leave := func() {
		u.mu.Lock()
		if o.users--; o.users == 0 {
			delete(u.owners, owner)
		}
		u.mu.Unlock()
	}
	select {
	case o.slots <- struct{}{}: // a turn free: no timer
		return func() { <-o.slots; leave() }, nil
	default:
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case o.slots <- struct{}{}:
		return func() { <-o.slots; leave() }, nil
	case <-timer.C:
		leave()
		return nil, fmt.Errorf("usage reports of this owner: no turn within %v: %w", wait, context.DeadlineExceeded)
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// usageBusy is the 429 of a usage report that did not get its owner's
// turn within STORE_TIMEOUT: the owner has that many in flight already.
func usageBusy() *Error {
	return rateLimited(limit.Decision{Which: limit.Management, Limit: usageReadsPerOwner, Reset: 1, RetryAfter: storeRetryBackoff})
}
