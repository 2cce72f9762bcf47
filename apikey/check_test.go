package apikey

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testkit"
)

// TestCheck: Check answers nil while the store answers (a key it does not
// have is an answer), and an error, within STORE_TIMEOUT, while it is down
// or hangs.
func TestCheck(t *testing.T) {
	s := newServer(t, nil, func(c *Config) { c.StoreTimeout = 100 * time.Millisecond })
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check on a memory store: %v", err)
	}
	s.store.Down.Store(true)
	if err := s.Check(context.Background()); !errors.Is(err, testkit.ErrStoreDown) {
		t.Fatalf("Check on a store that is down = %v, want its error", err)
	}
	s.store.Down.Store(false)
	s.store.Hang.Store(true)
	start := time.Now()
	if err := s.Check(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Check on a store that hangs = %v, want a deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Check on a store that hangs took %v, more than STORE_TIMEOUT", d)
	}
}

// TestCheckFromEnvNoEmulator: FromEnv with FIRESTORE_EMULATOR_HOST naming
// an address where nothing listens returns a Gate (it does not wait for the
// store), and Check says that no emulator answers there: what a start-up
// check stops the instance with.
func TestCheckFromEnvNoEmulator(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv("FIRESTORE_EMULATOR_HOST", addr)
	t.Setenv("GOOGLE_CLOUD_PROJECT", "demo-check")
	t.Setenv("STORE_TIMEOUT", "500ms")
	log, _ := testkit.Logger()
	g, err := FromEnv(WithLogger(log))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	t.Cleanup(g.stop)
	err = g.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Check with no emulator at %s = %v, want an error naming it", addr, err)
	}
	t.Log(err)
}

// TestFromEnvWarnsOfMistypedVariables: a variable one edit from one the
// Gate reads is logged at WARNING with the name meant, its value never.
func TestFromEnvWarnsOfMistypedVariables(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "demo-check")
	t.Setenv("KEY_CACHE_TL", "5m-s3cret")
	t.Setenv("KEY_CACHE_TTL", "")
	log, buf := testkit.Logger()
	g, err := FromEnv(WithLogger(log))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	t.Cleanup(g.stop)
	out := buf.String()
	if !strings.Contains(out, `"severity":"WARNING"`) || !strings.Contains(out, "KEY_CACHE_TL is set, but no variable of that name is read: did you mean KEY_CACHE_TTL?") {
		t.Errorf("log = %s, want a warning about KEY_CACHE_TL naming KEY_CACHE_TTL", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("the log holds the variable's value: %s", out)
	}
	if g.Config().CacheTTL != DefaultConfig().CacheTTL {
		t.Errorf("CacheTTL = %v: KEY_CACHE_TL was read", g.Config().CacheTTL)
	}
}
