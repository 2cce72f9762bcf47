package apikey

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// TestServerOnEmulator runs the Gate's hot path on the real Firestore
// emulator: keys minted into Firestore, checked through the cache.
func TestServerOnEmulator(t *testing.T) {
	// A store timeout long enough for the emulator's first calls, on a
	// cold JVM (as emulatorConfig), with the fake clock.
	srv := newServer(t, testkit.EmulatorStore(t), func(c *Config) { c.StoreTimeout = 20 * time.Second })
	key, k := srv.mint(t, "acme")
	expired, _ := srv.mint(t, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(-time.Minute) })
	unknown, _ := keyformat.New("kg")
	get := func(key string) *httptest.ResponseRecorder { return srv.do("GET", "/", "", key) }
	for _, c := range []struct {
		key  string
		want int
		code string
	}{{key, 200, ""}, {unknown, 401, "invalid_api_key"}, {expired, 401, "expired_api_key"}} {
		w := get(c.key)
		if w.Code != c.want || c.code != "" && testkit.Problem(t, w).Code != c.code {
			t.Errorf("key %s = %d %s, want %d %s", keyformat.Hint(c.key), w.Code, w.Body, c.want, c.code)
		}
	}
	before := srv.store.Gets.Load()
	for range 20 {
		get(key)
	}
	if n := srv.store.Gets.Load() - before; n > 1 {
		t.Errorf("20 warm requests made %d store calls", n)
	}
	if _, err := srv.store.Revoke(t.Context(), k.ID, t0); err != nil {
		t.Fatal(err)
	}
	if w := get(key); w.Code != 200 {
		t.Errorf("revoked key before this instance's next sync (its clock has not moved) = %d, want 200 from the cache", w.Code)
	}
	srv.clock.Advance(srv.Config().CacheTTL)
	get(key) // served stale, and starts the refresh
	srv.waitRefreshes()
	if w := get(key); w.Code != 401 {
		t.Errorf("revoked key after KEY_CACHE_TTL and one refresh = %d, want 401", w.Code)
	}
}
