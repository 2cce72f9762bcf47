// Package apikeytest gives a unit test a Gate on a memory store and valid
// keys for it, one call each, with no Firestore, no emulator and no
// network:
//
//	func TestThings(t *testing.T) {
//		g := apikeytest.New(t)
//		h := g.Protect("things:read", http.HandlerFunc(listThings))
//		r := httptest.NewRequest("GET", "/", nil)
//		r.Header.Set("X-API-Key", g.Mint(t, "acme", "things:read"))
//		w := httptest.NewRecorder()
//		h.ServeHTTP(w, r)
//		if w.Code != 200 {
//			t.Fatalf("status %d: %s", w.Code, w.Body)
//		}
//	}
//
// The Gate is apikey.New on a memstore.Store with apikey.DefaultConfig; it
// discards its logs (pass apikey.WithLogger, or Log, to see them) and is
// closed when the test ends.
package apikeytest

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
)

// Gate is an apikey.Gate on a memory store, for one test.
type Gate struct {
	*apikey.Gate
	// Store holds the Gate's keys, usage and plans: set a plan on it, or
	// read what the Gate counted (after Flush).
	Store *memstore.Store
}

// New returns a Gate with apikey.DefaultConfig on a new memory store,
// built with opts (apikey.WithClock, apikey.WithLogger, ...), closed when t
// ends.
func New(t testing.TB, opts ...apikey.Option) *Gate {
	t.Helper()
	return NewConfig(t, apikey.DefaultConfig(), opts...)
}

// NewConfig is New with cfg instead of apikey.DefaultConfig: for a test of
// other default scopes, limits or header.
func NewConfig(t testing.TB, cfg apikey.Config, opts ...apikey.Option) *Gate {
	t.Helper()
	s := memstore.New()
	// Logs are discarded unless an option of the test's asks for them: a
	// later WithLogger wins.
	opts = append([]apikey.Option{apikey.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	g := &Gate{Gate: apikey.New(cfg, s, opts...), Store: s}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Close(ctx); err != nil {
			t.Errorf("apikeytest: closing the Gate: %v", err)
		}
	})
	return g
}

// Log is the option that sends the Gate's logs to the test's output, as
// text, shown when the test fails or runs with -v.
func Log(t testing.TB) apikey.Option {
	return apikey.WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// Mint stores a new key of owner that grants scopes (none: the Gate's
// Config.DefaultScopes) and returns it, to send in the key header. It fails
// t when a scope is not valid.
func (g *Gate) Mint(t testing.TB, owner string, scopes ...string) string {
	t.Helper()
	return g.MintKey(t, apikey.Key{Owner: owner, Name: t.Name(), Scopes: slices.Clone(scopes)})
}

// MintKey stores k as a new key and returns it: for a key with an expiry
// or limits of its own. Its ID and hint are the new key's; CreatedAt is
// the present when zero.
func (g *Gate) MintKey(t testing.TB, k apikey.Key) string {
	t.Helper()
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now().UTC()
	}
	for _, s := range k.Scopes {
		if !keyrules.ValidScope(s) {
			t.Fatalf("apikeytest: %q is not a valid scope", s)
		}
	}
	key, k, err := keyrules.Mint(g.Config().Prefix, k)
	if err != nil {
		t.Fatalf("apikeytest: minting a key: %v", err)
	}
	if err := g.Store.Create(context.Background(), k); err != nil {
		t.Fatalf("apikeytest: storing a key: %v", err)
	}
	return key
}
