package apikey

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/testkit"
)

func TestMain(m *testing.M) {
	os.Exit(emulator.Main(m))
}

// The test fixtures of package apikey: one server, a Gate in front of the
// routes of an application of its own (a things endpoint, behind its scope)
// and the library's endpoints, mounted as a user mounts them.

// The scopes of the fixture's routes, and the defaults of its keys.
const (
	scopeThings = "things:check"
	scopeUsage  = "usage:read"
	scopeKeys   = "keys:manage"
)

// t0 is the fake clock's start.
var t0 = testkit.T0

// testConfig is the default configuration, with the function's default
// scopes, changed by change.
func testConfig(change ...func(*Config)) Config {
	c := DefaultConfig()
	c.DefaultScopes = []string{scopeThings, scopeUsage}
	for _, f := range change {
		f(&c)
	}
	return c
}

// emulatorConfig is testConfig with a store timeout long enough for the
// emulator's first calls, on a cold JVM.
func emulatorConfig(change ...func(*Config)) Config {
	return testConfig(append([]func(*Config){slowStore}, change...)...)
}

// slowStore gives the store calls of a test on the emulator, with the fake
// clock, the time the emulator's first calls take on a cold JVM.
func slowStore(c *Config) { c.StoreTimeout = 20 * time.Second }

// flushByHand makes the meter's flush interval an hour, so that the tests
// flush when they choose (s.meter.Flush).
func flushByHand(c *Config) { c.FlushInterval = time.Hour }

// server is a Gate and its routes on a FaultyStore, with a clock and a log
// buffer.
type server struct {
	*Gate
	http.Handler
	store *testkit.FaultyStore
	clock *testkit.FakeClock // nil with the real clock
	logs  *testkit.SyncBuffer
}

// newServer returns a server on s (nil: a new memory store) with the fake
// clock, configured by testConfig(change...). It is closed when the test
// ends.
func newServer(t testing.TB, s store.Store, change ...func(*Config)) *server {
	t.Helper()
	clock := testkit.NewFakeClock()
	return buildServer(t, s, testConfig(change...), clock, WithClock(clock.Now))
}

// newRealServer is newServer with the real clock and emulatorConfig.
func newRealServer(t testing.TB, s store.Store, change ...func(*Config)) *server {
	t.Helper()
	return buildServer(t, s, emulatorConfig(change...), nil)
}

func buildServer(t testing.TB, s store.Store, cfg Config, clock *testkit.FakeClock, opts ...Option) *server {
	if s == nil {
		s = memstore.New()
	}
	fs, ok := s.(*testkit.FaultyStore)
	if !ok {
		fs = &testkit.FaultyStore{Store: s}
	}
	log, buf := testkit.Logger()
	g := New(cfg, fs, append(opts, WithLogger(log))...)
	t.Cleanup(func() { g.stop() })
	return &server{Gate: g, Handler: routes(g), store: fs, clock: clock, logs: buf}
}

// routes are the fixture's routes: GET / for any key, the application's
// POST /v1/things (a stand-in that answers {"ok":true}) behind scopeThings,
// and the library's endpoints behind the scopes a user would give them.
func routes(g *Gate) http.Handler {
	keys := g.KeysHandlers()
	things := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}` + "\n"))
	})
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", g.Protect("", things))
	mux.Handle("POST /v1/things", g.Protect(scopeThings, things))
	mux.Handle("POST /v1/keys", g.Protect(scopeKeys, keys.Create))
	mux.Handle("GET /v1/keys", g.Protect(scopeKeys, keys.List))
	mux.Handle("GET /v1/keys/{id}", g.Protect(scopeKeys, keys.Get))
	mux.Handle("DELETE /v1/keys/{id}", g.Protect(scopeKeys, keys.Revoke))
	mux.Handle("GET /v1/keys/{id}/usage", g.Protect(scopeKeys, keys.KeyUsage))
	mux.Handle("GET /v1/whoami", g.Protect("", keys.WhoAmI))
	mux.Handle("POST /v1/keys/{id}/rotate", g.Protect(scopeKeys, keys.Rotate))
	mux.Handle("GET /v1/usage", g.Protect(scopeUsage, keys.Usage))
	return g.Authenticate(mux)
}

// do serves one request with the given key headers (none when keys is nil).
func (s *server) do(method, target, body string, keys ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, k := range keys {
		r.Header.Add("X-API-Key", k)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// call is do with one key ("" for none) and the body last.
func (s *server) call(method, target, key, body string) *httptest.ResponseRecorder {
	if key == "" {
		return s.do(method, target, body)
	}
	return s.do(method, target, body, key)
}

// mint mints a key in the server's store (see testkit.MintKey).
func (s *server) mint(t testing.TB, owner string, change ...func(*store.Key)) (string, store.Key) {
	t.Helper()
	return testkit.MintKey(t, s.store, owner, change...)
}

// editedOutside returns s behind a change feed that reports no change, so
// that to a Gate on it every write to s is as if made outside keygate (an
// operator editing a document in the console): only the cache's fresh
// window catches it.
func editedOutside(s store.Store) store.Store { return feedless{s} }

type feedless struct{ store.Store }

func (f feedless) Changes(ctx context.Context, after store.ChangeCursor, limit int) ([]store.Change, store.ChangeCursor, error) {
	_, next, err := f.Store.Changes(ctx, after, limit)
	return nil, next, err
}

// waitRefreshes waits for the background reads of changes, keys and owner
// plans.
func (s *server) waitRefreshes() {
	s.feed.bg.Wait()
	s.keys.entries.WaitReads()
	s.owners.plans.WaitReads()
}
