package keygate

import (
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
	handler http.Handler
}

// Options are the parts of a Server that tests replace.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the logs; nil means JSON for Cloud Logging on stdout.
	Logger *slog.Logger
}

// NewServer returns a Server for cfg that keeps keys in store.
func NewServer(cfg Config, store KeyStore, opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = NewLogger(os.Stdout)
	}
	keys := NewKeyCache(cfg, store, opts.Now, opts.Logger)
	auth := NewAuthenticator(cfg, keys, opts.Now, opts.Logger)
	api := &keysAPI{store: store, keys: keys, now: opts.Now, log: opts.Logger,
		prefix: cfg.Prefix, project: cfg.Project, timeout: cfg.StoreTimeout}
	routes := []route{
		{http.MethodGet, "/{$}", "", handleHello},
		{http.MethodPost, "/v1/bingo/check", ScopeBingoCheck, handleBingoCheck},
		{http.MethodPost, "/v1/keys", ScopeKeysManage, api.create},
		{http.MethodGet, "/v1/keys", ScopeKeysManage, api.list},
		{http.MethodGet, "/v1/keys/{id}", ScopeKeysManage, api.get},
		{http.MethodDelete, "/v1/keys/{id}", ScopeKeysManage, api.revoke},
		{http.MethodPost, "/v1/keys/{id}/rotate", ScopeKeysManage, api.rotate},
	}
	return &Server{keys: keys, handler: auth.Middleware(newRouter(auth, routes))}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Keys returns the server's key cache.
func (s *Server) Keys() *KeyCache { return s.keys }
