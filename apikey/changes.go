package apikey

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/swr"
)

// The Gate follows the store's change feed (store.ChangeStore), so that a
// key revoked, rotated or deleted, or a plan changed, through any instance's
// API or with the CLI, is refused or applied on every instance within
// syncMaxAge, whatever KEY_CACHE_TTL.
//
// The feed is polled on demand, by requests, never by a timer: on Cloud Run
// an instance's CPU is throttled between requests, so a timer (or a
// snapshot listener's stream) may be frozen exactly when a request arrives,
// and an idle instance should cost nothing. So on each request, by the age
// of the last successful sync (measured from its start: everything
// committed before that is applied):
//
//   - under syncEvery: nothing;
//   - from syncEvery: start a sync in the background, one at a time, and go
//     on; a busy instance (a request at least every second) thus syncs
//     about once a second and never waits;
//   - from syncMaxAge (an instance that was idle, or frozen): wait for a
//     sync, at most STORE_TIMEOUT, so that the request is answered on a
//     state at most syncMaxAge old.
//
// A sync that fails (or outlasts STORE_TIMEOUT) leaves the last known state
// in use: cached keys and plans within their windows, as in any store
// outage (KEY_STALE_TTL). It is logged at WARNING at most once per
// syncWarnEvery, retried at most once per storeRetryBackoff, and requests
// do not wait for the retries: a sync is waited for only when the last one
// succeeded, or failed at least syncMaxAge ago (the instance was idle since).
// So a busy instance never waits, even with the store down; an idle one
// waits once per wake-up, at most STORE_TIMEOUT; never a 401 for it.
//
// A sync reads the changes after its cursor, changesPage at a time, and
// drops what each names: a key's cached lookup (keyCache.Forget), an owner's
// plan (ownerPlans.forget); the next request reads it. It costs one read
// (Firestore bills an empty query as one) plus one per change. The first
// sync, started by New, takes the present as its cursor. A Gate that has
// not synced for restartAfter (longer than anything cached is used, or than
// the feed keeps changes), that is more than maxChangePages pages behind
// (a burst of writes, maybe all one owner's), or whose read finds the feed
// broken (store.ErrChangesExpired: a feed emptied or pruned by hand, a
// cursor ahead of it) starts over instead of reading the backlog: it takes
// the present as its cursor and revalidates every cached key and plan
// (revalidate), as for a change of a kind it does not know. Revalidated,
// not dropped: each is read again before its next use, so a key changed in
// the missed backlog is not served unchanged; but that read is of a key
// the Gate knew, never charged to the unknown-key budget (a burst of one
// owner's writes must not make another owner's valid keys 429), and if it
// fails the cached key is served within KEY_STALE_TTL, as in any outage.
// Only the keys not found are forgotten (their next read is charged, as
// any unknown key's). Each start-over is logged, at most once per
// syncWarnEvery, with how many there were since the last entry: WARNING
// when changes were lost (the feed broken), NOTICE when skipped (the
// backlog, an unknown kind), INFO after an idle spell.
const (
	// syncEvery is the age of the last sync from which a request starts
	// another in the background: about one read a second on a busy
	// instance, which keeps it within syncMaxAge without waiting.
	syncEvery = time.Second
	// syncMaxAge is the promise: a request is answered on a state at most
	// this old, unless the store fails. From this age a request waits for
	// a sync.
	syncMaxAge = 2 * time.Second
	// changesPage is how many changes one read asks for.
	changesPage = 100
	// maxChangePages bounds one sync's reads: further behind than that, it
	// is cheaper to start over.
	maxChangePages = 10
	// syncWarnEvery is the least time between two warnings of failed
	// syncs, so that an outage does not flood the log.
	syncWarnEvery = 10 * time.Second
)

// changeFeed is a Gate's place in the change feed.
type changeFeed struct {
	env
	store  store.ChangeStore
	keys   *keyCache
	owners *ownerPlans
	wait   time.Duration // the longest a request waits for a sync
	// restartAfter is the age of the last sync from which a sync starts
	// over instead of reading the backlog.
	restartAfter time.Duration
	ctx          context.Context // the Gate's life; syncs end with it

	// synced is when the last successful sync started; nil before the
	// first. The request path reads it alone.
	synced atomic.Pointer[time.Time]
	// early is set when a request went on to the caches before the first
	// sync had taken its cursor (its wait ended first): what it cached may
	// predate that cursor, so the first sync drops it.
	early atomic.Bool

	mu      sync.Mutex
	running *syncRun  // the sync under way; nil if none
	ended   time.Time // when the last sync ended
	failed  bool      // whether the last sync failed
	warned  time.Time // when a failed sync was last logged
	// cursor is where the next sync reads from; "" before the first. Only
	// the sync under way uses it, as overLogged and overSince: when a
	// start-over was last logged, and how many there were since.
	cursor     store.ChangeCursor
	overLogged time.Time
	overSince  int

	bg    sync.WaitGroup // syncs; tests wait on it
	waits atomic.Int64   // requests that waited for a sync; tests read it
}

// syncRun is one sync.
type syncRun struct {
	done chan struct{} // closed when it ends
	// wait says whether requests wait for it (see follow).
	wait bool
}

// newChangeFeed returns the feed of s for keys and owners, until ctx ends;
// a request waits at most wait for a sync, and a sync starts over from
// restartAfter (see changeFeed.restartAfter).
func newChangeFeed(ctx context.Context, e env, s store.ChangeStore, keys *keyCache, owners *ownerPlans, wait, restartAfter time.Duration) *changeFeed {
	return &changeFeed{
		env:          e,
		store:        s,
		keys:         keys,
		owners:       owners,
		wait:         wait,
		restartAfter: min(restartAfter, store.ChangeRetention),
		ctx:          ctx,
	}
}

// follow brings the Gate's caches up to date for a request at now, as the
// comment at the top of this file says: it returns at once unless the
// instance has been idle, and then waits at most the store timeout, or
// until ctx ends.
func (f *changeFeed) follow(ctx context.Context, now time.Time) {
	if s := f.synced.Load(); s != nil && now.Sub(*s) < syncEvery {
		return
	}
	if run := f.start(now); run != nil && run.wait {
		f.waits.Add(1)
		swr.Wait(ctx, run.done, f.wait) // late or not, the request goes on
	}
	if f.synced.Load() == nil {
		f.early.Store(true)
	}
}

// start returns the sync under way, or starts one at now, or returns nil
// when it is not time for one: the last sync is recent, or failed less
// than storeRetryBackoff ago.
func (f *changeFeed) start(now time.Time) *syncRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running != nil {
		return f.running
	}
	s := f.synced.Load()
	if s != nil && now.Sub(*s) < syncEvery {
		return nil // one ended meanwhile
	}
	if f.failed && now.Sub(f.ended) < storeRetryBackoff {
		return nil
	}
	stale := s == nil || now.Sub(*s) >= syncMaxAge
	run := &syncRun{done: make(chan struct{}), wait: stale && (!f.failed || now.Sub(f.ended) >= syncMaxAge)}
	f.running = run
	f.bg.Add(1)
	go f.sync(run, now)
	return run
}

// sync runs one sync that started at start, and records its outcome.
func (f *changeFeed) sync(run *syncRun, start time.Time) {
	defer f.bg.Done()
	err := f.read(start)
	end := f.now()
	f.mu.Lock()
	if err == nil {
		f.synced.Store(&start)
	}
	f.running, f.ended, f.failed = nil, end, err != nil
	warn := err != nil && f.ctx.Err() == nil && (f.warned.IsZero() || end.Sub(f.warned) >= syncWarnEvery)
	if warn {
		f.warned = end
	}
	f.mu.Unlock()
	close(run.done)
	if warn {
		attrs := []slog.Attr{slog.String("error", err.Error())}
		if s := f.synced.Load(); s != nil {
			attrs = append(attrs, slog.Duration("age", end.Sub(*s)))
		}
		f.log.LogAttrs(f.ctx, slog.LevelWarn,
			"key store unavailable: changes to keys and plans not read; serving the last known state", attrs...)
	}
}

// read applies the changes committed since the last sync, or starts over.
func (f *changeFeed) read(start time.Time) error {
	s := f.synced.Load()
	if f.cursor == "" || s == nil {
		return f.restart(nil)
	}
	if age := start.Sub(*s); age >= f.restartAfter {
		return f.restart(&startOver{slog.LevelInfo, "idle past the cache's life", []slog.Attr{slog.Duration("age", age)}})
	}
	for range maxChangePages {
		changes, next, err := f.store.Changes(f.ctx, f.cursor, changesPage)
		if errors.Is(err, store.ErrChangesExpired) {
			// Changes this Gate did not read are gone (a feed emptied or
			// pruned by hand, or a cursor ahead of it): what it caches may
			// be wrong, and someone should know.
			return f.restart(&startOver{slog.LevelWarn, "change feed broken: changes to keys and plans may have been missed", []slog.Attr{slog.String("error", err.Error())}})
		}
		if err != nil {
			return err
		}
		for _, c := range changes {
			f.apply(c)
		}
		f.cursor = next
		if len(changes) < changesPage {
			return nil
		}
	}
	return f.restart(&startOver{logging.LevelNotice, "more changes since the last sync than one sync reads", []slog.Attr{slog.Int("changes_read", maxChangePages*changesPage)}})
}

// startOver is why a sync starts over, for its log entry.
type startOver struct {
	level slog.Level
	why   string
	attrs []slog.Attr
}

// restart takes the present as the cursor and has every cached key and
// plan read again before its next use, since they may predate changes the
// Gate will not read; it logs why (see the top of this file). The first
// sync (why nil) does that only if a request went on before it (early):
// else nothing was cached before its cursor.
func (f *changeFeed) restart(why *startOver) error {
	_, next, err := f.store.Changes(f.ctx, "", 1)
	if err != nil {
		return err
	}
	if why != nil {
		f.revalidate(why)
	} else if f.early.Load() {
		f.keys.Revalidate()
		f.owners.revalidate()
	}
	f.cursor = next
	return nil
}

// revalidate has every cached key and plan read again before its next use,
// and logs why, at most once per syncWarnEvery: a burst of writes that
// outruns every sync for a minute logs 6 entries, not 60.
func (f *changeFeed) revalidate(why *startOver) {
	f.keys.Revalidate()
	f.owners.revalidate()
	f.overSince++
	now := f.now()
	if !f.overLogged.IsZero() && now.Sub(f.overLogged) < syncWarnEvery {
		return
	}
	attrs := append(why.attrs, slog.Int("start_overs", f.overSince),
		slog.Int("keys_cached", f.keys.Len()))
	f.overLogged, f.overSince = now, 0
	f.log.LogAttrs(f.ctx, why.level, why.why+"; following the change feed from now: every cached key and plan is read again before its next use", attrs...)
}

// apply drops what c names from the caches. A kind this Gate does not know
// (written by a newer keygate) may have changed anything: it revalidates
// all.
func (f *changeFeed) apply(c store.Change) {
	switch c.Kind {
	case store.ChangeKey:
		f.keys.Forget(c.ID)
	case store.ChangeOwner:
		f.owners.forget(c.ID)
	default:
		f.revalidate(&startOver{logging.LevelNotice, "a change of a kind this version does not know", []slog.Attr{slog.String("kind", string(c.Kind))}})
	}
}
