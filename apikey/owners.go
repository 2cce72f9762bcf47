package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/swr"
)

// planOptions are the owner plans' size and windows (those of keys, but
// for the negative one: an owner without a plan has the defaults), the
// longest a request waits for a read, and the defaults.
type planOptions struct {
	Size         int
	Fresh, Stale time.Duration
	Wait         time.Duration
	// Effective is an owner's plan: its stored one (found) over the
	// configured defaults (plans.Defaults.Effective).
	Effective func(p store.Plan, found bool) store.Plan
}

// planReader reads an owner's stored plan (found false: none); prev is its
// effective plan as last read, nil for an owner not read yet.
type planReader func(ctx context.Context, owner string, prev *store.Plan) (p store.Plan, found bool, err error)

// ownerPlans caches each owner's effective plan, shared by all the owner's
// cached keys: a stale-while-revalidate cache (internal/swr) by owner,
// with the same windows as keys: fresh for KEY_CACHE_TTL, then served
// while a background read refreshes it, until KEY_STALE_TTL. Past that, a
// request waits for a read. A change of the plan read from the change feed
// drops it (forget).
type ownerPlans struct {
	plans *swr.Cache[string, *store.Plan]
	// read is made once: a func value made per call would cost every
	// request an allocation.
	read swr.Refresh[string, *store.Plan]
}

func newOwnerPlans(e env, opt planOptions, read planReader) *ownerPlans {
	return &ownerPlans{
		plans: swr.New[string, *store.Plan](swr.Options{
			Size: opt.Size, Fresh: opt.Fresh, Stale: opt.Stale,
			Backoff: storeRetryBackoff, Wait: opt.Wait, Now: e.now,
		}),
		// An owner that cannot name a plan document (written by other
		// means) gets the defaults.
		read: func(ctx context.Context, owner string, prev **store.Plan) (*store.Plan, bool, error) {
			var pp *store.Plan
			if prev != nil {
				pp = *prev
			}
			p, found, err := read(ctx, owner, pp)
			if errors.Is(err, store.ErrInvalidOwner) {
				p, found, err = store.Plan{Owner: owner}, false, nil
			}
			if err != nil {
				e.log.LogAttrs(ctx, slog.LevelWarn, "key store unavailable: owner plan not read",
					slog.String("owner", owner), slog.String("error", err.Error()))
				return nil, false, err
			}
			p = opt.Effective(p, found)
			return &p, true, nil
		},
	}
}

// plan returns the effective plan of e's owner at now: at once while it is
// fresh, at once with a background read while it is stale, and otherwise
// after a read, waiting at most the store timeout (errStoreUnavailable if
// the store does not answer). The plan returned is shared: do not modify
// it. e keeps the plan's entry (cacheEntry.plan), so that the next
// request of the key finds it without the LRU's lock.
func (o *ownerPlans) plan(ctx context.Context, e *cacheEntry, now time.Time) (*store.Plan, error) {
	p, _, err := o.plans.GetVia(ctx, &e.plan, e.key.Owner, now, o.read)
	if err != nil {
		return nil, fmt.Errorf("%w: owner plan: %w", errStoreUnavailable, err)
	}
	return p, nil
}

// forget drops the owner's plan, so that the next request reads it. A read
// of it already under way does not keep what it read, which may predate
// the change that called forget.
func (o *ownerPlans) forget(owner string) { o.plans.Forget(owner) }

// revalidate has every owner's plan read again before its next use; if the
// read fails, the cached plan is served within KEY_STALE_TTL.
func (o *ownerPlans) revalidate() { o.plans.Revalidate() }
