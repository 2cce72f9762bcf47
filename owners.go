package keygate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
)

// ownerPlans caches each owner's effective plan (its stored plan over the
// configured defaults), shared by all the owner's cached keys, with the
// same windows as keys: fresh for KEY_CACHE_TTL, then served while a
// background read refreshes it, and usable at most until a key's entry
// would be gone (cacheLife). Past that, a request waits for a read. An owner
// with a monthly quota also has its month total read for the meter, so the
// quota's base is never older than its plan.
type ownerPlans struct {
	plans   PlanStore   // nil: every owner gets the defaults
	both    OwnerReader // nil: plan and month total read one after the other
	meter   *Meter      // nil: no quota bases
	cfg     Config
	refs    *expirable.LRU[string, *ownerRef]
	mu      sync.Mutex // serializes creating a ref
	group   singleflight.Group
	bg      sync.WaitGroup // background reads; tests wait on it
	now     func() time.Time
	log     *slog.Logger
	fresh   time.Duration
	usable  time.Duration
	timeout time.Duration
}

// ownerRef is one owner's cached plan. Keys' cache entries point to it, so
// that a refreshed plan applies to all of them at once.
type ownerRef struct {
	name    string
	state   atomic.Pointer[ownerState] // nil until first read
	nextTry atomic.Int64               // as cacheEntry.nextTry
}

// ownerState is an owner's effective plan as read at fetched.
type ownerState struct {
	plan    Plan
	fetched time.Time
}

func newOwnerPlans(cfg Config, plans PlanStore, now func() time.Time, log *slog.Logger) *ownerPlans {
	return &ownerPlans{
		plans:   plans,
		both:    ownerReaderOf(plans),
		cfg:     cfg,
		refs:    expirable.NewLRU[string, *ownerRef](cfg.CacheSize, nil, cacheLife(cfg)),
		now:     now,
		log:     log,
		fresh:   cfg.CacheTTL,
		usable:  cacheLife(cfg) - storeRetryBackoff,
		timeout: cfg.StoreTimeout,
	}
}

// ref returns the owner's ref, creating it without a state.
func (o *ownerPlans) ref(owner string) *ownerRef {
	return getOrAdd(o.refs, &o.mu, owner, func() *ownerRef { return &ownerRef{name: owner} })
}

// plan returns r's plan at now: at once while it is fresh, at once with a
// background read while it is usable, and otherwise after a read, waiting
// at most the store timeout (ErrStoreUnavailable if the store does not
// answer).
func (o *ownerPlans) plan(ctx context.Context, r *ownerRef, now time.Time) (*ownerState, error) {
	st := r.state.Load()
	if st != nil && now.Sub(st.fetched) < o.usable {
		if !now.Before(st.fetched.Add(o.fresh)) && claimTry(&r.nextTry, now) {
			o.revalidate(r)
		}
		return st, nil
	}
	ch := o.group.DoChan(r.name, func() (any, error) { return o.read(r) })
	timer := time.NewTimer(o.timeout)
	defer timer.Stop()
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, fmt.Errorf("%w: owner plan: %w", ErrStoreUnavailable, res.Err)
		}
		return res.Val.(*ownerState), nil
	case <-timer.C:
		return nil, fmt.Errorf("%w: owner plan: no answer within %v", ErrStoreUnavailable, o.timeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, ctx.Err())
	}
}

// revalidate reads r's plan in the background; a failure keeps the plan
// it has, logged.
func (o *ownerPlans) revalidate(r *ownerRef) {
	o.bg.Add(1)
	go func() {
		defer o.bg.Done()
		o.group.Do(r.name, func() (any, error) { return o.read(r) })
	}()
}

// read reads r's plan and, for a quota, the owner's month total for the
// meter, and stores the new state in r. An owner whose last plan had a
// quota has both read in one round trip (OwnerReader); otherwise the month
// total is read only if the plan turns out to have one. An owner that
// cannot name a plan document (written by other means) gets the defaults.
func (o *ownerPlans) read(r *ownerRef) (*ownerState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	p, found := Plan{Owner: r.name}, false
	var err error
	now := o.now()
	based := false // whether the meter has the month total of this read
	if prev := r.state.Load(); prev != nil && prev.plan.MonthlyQuota > 0 && o.both != nil && o.meter != nil {
		err = o.meter.ReadOwnerMonthWith(ctx, r.name, now, func(ctx context.Context) (total int64, err error) {
			p, found, total, err = o.both.ReadOwner(ctx, r.name, MonthOf(now))
			return total, err
		})
		based = true
	} else if o.plans != nil {
		p, found, err = LoadPlan(ctx, o.plans, r.name)
	}
	if errors.Is(err, ErrInvalidOwner) {
		p, found, err, based = Plan{Owner: r.name}, false, nil, false
	}
	st := &ownerState{plan: o.cfg.EffectivePlan(p, found), fetched: now}
	if err == nil && !based && st.plan.MonthlyQuota > 0 && o.meter != nil {
		err = o.meter.ReadOwnerMonth(ctx, r.name, now)
	}
	if err != nil {
		o.log.LogAttrs(ctx, slog.LevelWarn, "key store unavailable: owner plan not read",
			slog.String("owner", r.name), slog.String("error", err.Error()))
		return nil, err
	}
	r.state.Store(st)
	return st, nil
}

// ownerReaderOf is plans as an OwnerReader, or nil.
func ownerReaderOf(plans PlanStore) OwnerReader {
	b, _ := plans.(OwnerReader)
	return b
}

// claimTry reports whether the caller may start a background read at now:
// whether none was started less than storeRetryBackoff ago (next holds when,
// in Unix nanoseconds). Of concurrent callers, one wins.
func claimTry(next *atomic.Int64, now time.Time) bool {
	n := next.Load()
	return now.UnixNano() >= n && next.CompareAndSwap(n, now.Add(storeRetryBackoff).UnixNano())
}
