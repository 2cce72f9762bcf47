package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/lruutil"
	"golang.org/x/sync/singleflight"
)

// ownerPlans caches each owner's effective plan (its stored plan over the
// configured defaults), shared by all the owner's cached keys, with the
// same windows as keys: fresh for KEY_CACHE_TTL, then served while a
// background read refreshes it, and usable at most until a key's entry
// would be gone (cacheLife). Past that, a request waits for a read. A
// change of the plan read from the change feed drops it (forget).
type ownerPlans struct {
	// read reads an owner's stored plan (found false: none); prev is its
	// plan as last read, nil for an owner not read yet.
	read func(ctx context.Context, owner string, prev *store.Plan) (p store.Plan, found bool, err error)
	cfg  Config
	// refs holds one ref per owner. A ref it drops (the least recently
	// used, past CacheSize owners) may still be held by keys' entries:
	// it is marked dropped, and they use the owner's current ref instead,
	// so that forget, which finds refs here, reaches all of them. Refs do
	// not expire: their states do (usable).
	refs   *lru.Cache[string, *ownerRef]
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
	state   atomic.Pointer[ownerState] // nil until first read, and once forgotten
	nextTry atomic.Int64               // as cacheEntry.nextTry
	// forgets counts forget's calls, so that a read that was under way
	// when the plan was forgotten does not keep what it read.
	forgets atomic.Int64
	// dropped is set when refs drops the ref: see ownerPlans.refs.
	dropped atomic.Bool
}

// ownerState is an owner's effective plan as read at fetched.
type ownerState struct {
	plan    store.Plan
	fetched time.Time
}

func newOwnerPlans(cfg Config, read func(context.Context, string, *store.Plan) (store.Plan, bool, error), now func() time.Time, log *slog.Logger) *ownerPlans {
	refs, _ := lru.NewWithEvict(cfg.CacheSize, func(_ string, r *ownerRef) { r.dropped.Store(true) })
	return &ownerPlans{
		read:   read,
		cfg:    cfg,
		refs:   refs,
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

// forget drops the owner's plan, so that the next request reads it. A read
// of it already under way does not keep what it read, which may predate
// the change that called forget.
func (o *ownerPlans) forget(owner string) {
	if r, ok := o.refs.Peek(owner); ok {
		r.forgets.Add(1)
		r.state.Store(nil)
	}
	o.group.Forget(owner)
}

// purge forgets every owner's plan.
func (o *ownerPlans) purge() {
	for _, owner := range o.refs.Keys() {
		o.group.Forget(owner)
	}
	o.refs.Purge() // marks them dropped: keys' entries take new ones
}

// plan returns the plan of r's owner at now: at once while it is fresh, at
// once with a background read while it is usable, and otherwise after a
// read, waiting at most the store timeout (ErrStoreUnavailable if the store
// does not answer).
func (o *ownerPlans) plan(ctx context.Context, r *ownerRef, now time.Time) (*ownerState, error) {
	if r.dropped.Load() {
		r = o.ref(r.name)
	}
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
	forgets := r.forgets.Load()
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
	// Stored, then checked: a forget after the check stores nil after
	// this; one before it is undone here.
	if r.forgets.Load() != forgets {
		r.state.CompareAndSwap(st, nil)
	}
	return st, nil
}

// claimTry reports whether the caller may start a background read at now:
// whether none was started less than storeRetryBackoff ago (next holds when,
// in Unix nanoseconds). Of concurrent callers, one wins.
func claimTry(next *atomic.Int64, now time.Time) bool {
	n := next.Load()
	return now.UnixNano() >= n && next.CompareAndSwap(n, now.Add(storeRetryBackoff).UnixNano())
}
