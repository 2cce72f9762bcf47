package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/lruutil"
	"golang.org/x/sync/singleflight"
)

// ownerPlans caches each owner's effective plan (its stored plan over the
// configured defaults), shared by all the owner's cached keys, with the
// same windows as keys: fresh for KEY_CACHE_TTL, then served while a
// background read refreshes it, and usable at most until a key's entry
// would be gone (cacheLife). Past that, a request waits for a read.
type ownerPlans struct {
	// read reads an owner's stored plan (found false: none); prev is its
	// plan as last read, nil for an owner not read yet.
	read   func(ctx context.Context, owner string, prev *store.Plan) (p store.Plan, found bool, err error)
	cfg    Config
	refs   *expirable.LRU[string, *ownerRef]
	mu     sync.Mutex // serializes creating a ref
	group  singleflight.Group
	bg     sync.WaitGroup // background reads; tests wait on it
	now    func() time.Time
	log    *slog.Logger
	fresh  time.Duration
	usable time.Duration
	wait   time.Duration // the longest a request waits for a read
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
	plan    store.Plan
	fetched time.Time
}

func newOwnerPlans(cfg Config, read func(context.Context, string, *store.Plan) (store.Plan, bool, error), now func() time.Time, log *slog.Logger) *ownerPlans {
	return &ownerPlans{
		read:   read,
		cfg:    cfg,
		refs:   expirable.NewLRU[string, *ownerRef](cfg.CacheSize, nil, cacheLife(cfg)),
		now:    now,
		log:    log,
		fresh:  cfg.CacheTTL,
		usable: cacheLife(cfg) - storeRetryBackoff,
		wait:   cfg.StoreTimeout,
	}
}

// ref returns the owner's ref, creating it without a state.
func (o *ownerPlans) ref(owner string) *ownerRef {
	return lruutil.GetOrAdd(o.refs, &o.mu, owner, func() *ownerRef { return &ownerRef{name: owner} })
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
	ch := o.group.DoChan(r.name, func() (any, error) { return o.load(r) })
	timer := time.NewTimer(o.wait)
	defer timer.Stop()
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, fmt.Errorf("%w: owner plan: %w", ErrStoreUnavailable, res.Err)
		}
		return res.Val.(*ownerState), nil
	case <-timer.C:
		return nil, fmt.Errorf("%w: owner plan: no answer within %v: %w", ErrStoreUnavailable, o.wait, context.DeadlineExceeded)
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
		o.group.Do(r.name, func() (any, error) { return o.load(r) })
	}()
}

// load reads r's plan and stores the new state in r. An owner that cannot
// name a plan document (written by other means) gets the defaults.
func (o *ownerPlans) load(r *ownerRef) (*ownerState, error) {
	ctx := context.Background() // every store call has its own deadline
	now := o.now()
	var prev *store.Plan
	if st := r.state.Load(); st != nil {
		prev = &st.plan
	}
	p, found, err := o.read(ctx, r.name, prev)
	if errors.Is(err, store.ErrInvalidOwner) {
		p, found, err = store.Plan{Owner: r.name}, false, nil
	}
	if err != nil {
		o.log.LogAttrs(ctx, slog.LevelWarn, "key store unavailable: owner plan not read",
			slog.String("owner", r.name), slog.String("error", err.Error()))
		return nil, err
	}
	st := &ownerState{plan: o.cfg.EffectivePlan(p, found), fetched: now}
	r.state.Store(st)
	return st, nil
}

// claimTry reports whether the caller may start a background read at now:
// whether none was started less than storeRetryBackoff ago (next holds when,
// in Unix nanoseconds). Of concurrent callers, one wins.
func claimTry(next *atomic.Int64, now time.Time) bool {
	n := next.Load()
	return now.UnixNano() >= n && next.CompareAndSwap(n, now.Add(storeRetryBackoff).UnixNano())
}
