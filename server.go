package keygate

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// Server is keygate's HTTP handler: the Authenticator's middleware in front
// of the endpoints. API serves one built from the environment; tests and
// programs can build their own.
type Server struct {
	keys    *KeyCache
	meter   *Meter
	handler http.Handler
	stop    context.CancelFunc
	stopped chan struct{}
}

// Options are the parts of a Server that tests replace.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the logs; nil means JSON for Cloud Logging on stdout.
	Logger *slog.Logger
}

// NewServer returns a Server for cfg that keeps keys in store, and usage in
// it too when it is a UsageStore (both keygate stores are). Close it to
// write the last usage counts.
func NewServer(cfg Config, store KeyStore, opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = NewLogger(os.Stdout)
	}
	usage, ok := store.(UsageStore)
	if !ok {
		usage = discardUsage{}
	}
	meter := NewMeter(usage, cfg.FlushInterval, cfg.StoreTimeout, cacheLife(cfg), opts.Now, opts.Logger)
	keys := NewKeyCache(cfg, store, opts.Now, opts.Logger)
	keys.meter, keys.owners.meter = meter, meter
	auth := NewAuthenticator(cfg, keys, opts.Now, opts.Logger)
	lim := &limits{meter: meter, rates: newRateLimits(cfg.CacheSize),
		now: opts.Now, log: opts.Logger, project: cfg.Project}
	base := endpoint{now: opts.Now, log: opts.Logger, project: cfg.Project, timeout: cfg.StoreTimeout}
	plans, _ := store.(PlanStore)
	api := &keysAPI{endpoint: base, store: store, keys: keys, prefix: cfg.Prefix, plans: plans, cfg: cfg}
	routes := []route{
		{http.MethodGet, "/{$}", "", handleHello},
		{http.MethodPost, "/v1/bingo/check", ScopeBingoCheck, handleBingoCheck},
		{http.MethodPost, "/v1/keys", ScopeKeysManage, api.create},
		{http.MethodGet, "/v1/keys", ScopeKeysManage, api.list},
		{http.MethodGet, "/v1/keys/{id}", ScopeKeysManage, api.get},
		{http.MethodDelete, "/v1/keys/{id}", ScopeKeysManage, api.revoke},
		{http.MethodPost, "/v1/keys/{id}/rotate", ScopeKeysManage, api.rotate},
		{http.MethodGet, "/v1/usage", ScopeUsageRead, (&usageAPI{endpoint: base, store: usage, meter: meter}).get},
	}
	for i := range routes {
		routes[i].handler = lim.wrap(routes[i].handler)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{keys: keys, meter: meter, handler: auth.Middleware(newRouter(auth, routes)), stop: stop, stopped: make(chan struct{})}
	go func() {
		meter.Run(ctx)
		close(s.stopped)
	}()
	return s
}

// Close shuts the server down, all before ctx ends: from now on it answers
// 503 shutting_down to requests it would have counted, waits for the
// requests it counted to be answered, stops its background flushes, and
// writes every count (Meter.Close). It may be called more than once.
func (s *Server) Close(ctx context.Context) error {
	s.stop()
	select {
	case <-s.stopped:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.meter.Close(ctx)
}

// Meter returns the server's usage meter.
func (s *Server) Meter() *Meter { return s.meter }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Keys returns the server's key cache.
func (s *Server) Keys() *KeyCache { return s.keys }

// endpoint is what the endpoints that call the store share: the clock, the
// log, and the store timeout.
type endpoint struct {
	now     func() time.Time
	log     *slog.Logger
	project string
	timeout time.Duration
}

// storeContext bounds a store call by the store timeout.
func (e endpoint) storeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), e.timeout)
}

// storeFailed answers 503 for a store error and logs it.
func (e endpoint) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	logRequest(r.Context(), e.log, slog.LevelError, r, e.project, "store call failed", slog.String("error", err.Error()))
	setRetryAfter(w, storeRetryBackoff)
	writeProblem(w, newProblem(http.StatusServiceUnavailable, "store_unavailable", "The store is unavailable. Retry shortly."))
}
