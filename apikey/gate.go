package apikey

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/apikey/billing"
	"github.com/keygate/keygate/apikey/events"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/globallimit"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/meter"
	"github.com/keygate/keygate/internal/problem"
	"github.com/keygate/keygate/internal/ratelimit"
)

// Gate checks API keys in front of HTTP handlers. Build one per process and
// Close it before the process ends, so that the last counts are written.
type Gate struct {
	env
	cfg Config
	// store is the whole store, every call bounded by cfg.StoreTimeout: the
	// keys API, the usage endpoints and leak reports use it. The request
	// path (Protect) takes narrow views of it: the caches read through
	// reader (readStore: Get, ReadKey, GetPlan, ReadOwner), the change feed
	// takes a store.ChangeStore and the meter a store.UsageStore.
	store  store.Store
	reader reader
	keys   *keyCache
	owners *ownerPlans
	feed   *changeFeed // keeps keys and owners in step with the store's changes
	meter  *meter.Meter
	rates  *ratelimit.Limits // per instance: without Redis, or while it is away
	// manageRates and manageMints are the owners' management budgets
	// and mints (manage.go), per instance, apart from the data
	// plane's.
	manageRates, manageMints *ratelimit.Limits
	global                   *globallimit.Limiter      // on Redis, shared by all instances; nil without REDIS_URL
	month                    atomic.Pointer[monthSpan] // the month the quotas on Redis count, named once
	// unknownKeys is the budget of store reads for keys that turn out
	// not to exist, per client address and for the instance (loadKey).
	unknownKeys *ratelimit.UnknownKeys
	// usageSlots take turns among each owner's usage reports (usageslots.go).
	usageSlots *usageSlots

	onError ErrorHandler
	// events publishes the events of writes (events.go); nil: none.
	events events.Publisher
	// billing exports owners' usage to Stripe on Sweep (billing.go); nil
	// without STRIPE_SECRET_KEY.
	billing *billing.Exporter
	// explain makes a store error say what to do, for the log (see
	// firestorestore.Store.Explain); the identity for other stores.
	explain func(error) error

	header    string   // canonical form of cfg.Header, for the header map
	vary      []string // {header}, the Vary of the responses the Gate lets through (len == cap: an append copies)
	bearer    bool     // the header is Authorization: the key follows Bearer
	challenge string   // the WWW-Authenticate of a 401

	ctx     context.Context // the Gate's own work (the meter, the feed, fetches of GitHub's keys); Close ends it
	stop    context.CancelFunc
	stopped chan struct{}
}

// An Option changes what New builds.
type Option func(*options)

type options struct {
	now     func() time.Time
	log     *slog.Logger
	onError ErrorHandler
	events  events.Publisher
}

// WithClock makes now the Gate's clock, for tests; the default is time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sends the logs, keys redacted, to l, not Cloud Logging's stdout.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithErrorHandler makes h write the refusals; the default is WriteError.
func WithErrorHandler(h ErrorHandler) Option { return func(o *options) { o.onError = h } }

// New returns a Gate for cfg that keeps keys, usage and plans in s.
func New(cfg Config, s store.Store, opts ...Option) *Gate {
	o := options{now: time.Now, onError: WriteError}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = logging.NewLogger(os.Stdout)
	} else {
		o.log = slog.New(logging.Redacting(o.log.Handler()))
	}
	g := &Gate{
		cfg:         cfg,
		store:       store.ConfirmWrites(store.WithTimeout(s, cfg.StoreTimeout), cfg.StoreTimeout),
		rates:       ratelimit.NewLimits(cfg.CacheSize),
		manageRates: ratelimit.NewLimits(cfg.CacheSize),
		usageSlots:  newUsageSlots(),
		manageMints: ratelimit.NewLimits(cfg.CacheSize),
		unknownKeys: ratelimit.NewUnknownKeys(ratelimit.DefaultUnknownKeyLimits),
		env:         env{now: o.now, log: o.log},
		onError:     o.onError,
		explain:     func(err error) error { return err },
		header:      http.CanonicalHeaderKey(cfg.Header),
		vary:        []string{http.CanonicalHeaderKey(cfg.Header)},
		challenge:   challenge(cfg.Header),
		stopped:     make(chan struct{}),
	}
	g.events = eventsOf(cfg, o)
	g.billing = BillingExporter(cfg, g.store, o.log)
	g.bearer = g.header == "Authorization"
	if e, ok := s.(interface{ Explain(error) error }); ok {
		g.explain = e.Explain
	}
	if cfg.RedisURL != "" {
		var err error
		g.global, err = globallimit.New(globallimit.Options{URL: cfg.RedisURL, CA: cfg.RedisCA, Timeout: cfg.RedisTimeout,
			Prefix: "keygate:" + cfg.Project + "/" + cfg.Database + "/" + cfg.Collection + ":", Leases: true, Now: o.now, Log: o.log})
		if err != nil { // LoadConfig checks it: a Config built by hand
			o.log.Error("REDIS_URL is not valid: rate limits and quotas are per instance", slog.String("error", err.Error()))
		}
	}
	g.meter = meter.New(meter.Options{Store: g.store, Interval: cfg.FlushInterval, Idle: cacheLife(cfg), Now: o.now, Log: o.log,
		Record: g.usageEvents()})
	g.reader = reader{store: g.store, meter: g.meter, now: o.now, effective: cfg.plans().Effective}
	g.owners = newOwnerPlans(g.env, planOptions{Size: cfg.CacheSize, Fresh: cfg.CacheTTL, Stale: cfg.StaleTTL,
		Wait: cfg.StoreTimeout, Effective: cfg.plans().Effective}, g.reader.readOwner)
	g.keys = newKeyCache(g.env, cacheOptions{Size: cfg.CacheSize, Fresh: cfg.CacheTTL, Stale: cfg.StaleTTL,
		Negative: cfg.NegativeTTL, Wait: cfg.StoreTimeout, DefaultScopes: cfg.DefaultScopes}, g.reader.readKey)
	ctx, stop := context.WithCancel(context.Background())
	g.ctx, g.stop = ctx, stop
	g.feed = newChangeFeed(ctx, g.env, g.store, g.keys, g.owners, cfg.StoreTimeout, cacheLife(cfg))
	g.feed.start(o.now()) // the present, as the first request's cursor
	go func() {
		g.meter.Run(ctx)
		close(g.stopped)
	}()
	return g
}

// Config returns the Gate's configuration (console.Config needs Header).
func (g *Gate) Config() Config { return g.cfg }

// logRequest logs an entry about r at level, placed by r's attributes
// (logging.LogRequest): its trace, method, path and client address.
func (g *Gate) logRequest(r *http.Request, level slog.Level, msg string, attrs ...slog.Attr) {
	logging.LogRequest(r.Context(), g.log, level, r, g.cfg.Project, logging.ClientAddress(g.cfg.ClientAddress), msg, attrs...)
}

// clientIP is r's client address, where CLIENT_ADDRESS says the platform
// puts it.
func (g *Gate) clientIP(r *http.Request) string {
	return logging.ClientIP(r, logging.ClientAddress(g.cfg.ClientAddress))
}

// caller is the verified key of r, which the self-service endpoints act
// for. Mounted without Manage (or Protect), they have none: that is a
// programming error, answered 500 and logged, never served.
func (g *Gate) caller(w http.ResponseWriter, r *http.Request) *cacheEntry {
	if e := g.verified(r); e != nil {
		return e
	}
	g.logRequest(r, slog.LevelError,
		"a keygate endpoint is mounted without Gate.Manage: request refused")
	problem.Write(w, problem.New(http.StatusInternalServerError, CodeMisconfigured,
		"The service is misconfigured; its logs say how."))
	return nil
}
