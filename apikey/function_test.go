package apikey

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// countedFunction returns an entry point on a Gate over s, built by a
// build that counts its calls, with its logs in the buffer returned; the
// Gate, once built, is closed when the test ends.
func countedFunction(t *testing.T, s store.Store, cfg Config) (*function, *atomic.Int64, *testkit.SyncBuffer) {
	t.Helper()
	log, logs := testkit.Logger()
	var builds atomic.Int64
	var mu sync.Mutex
	var built *Gate
	build := func() (*Gate, error) {
		builds.Add(1)
		mu.Lock()
		defer mu.Unlock()
		built = New(cfg, s, WithLogger(log))
		return built, nil
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if built != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			built.Close(ctx)
		}
	})
	routes := func(g *Gate) http.Handler { return g.Protect("things:read", http.HandlerFunc(hello)) }
	return newFunction(build, routes, log), &builds, logs
}

func hello(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }

// get serves GET / with key on h.
func get(h http.Handler, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestFunctionBuildsOnce: the entry point builds nothing when it is made,
// under go test not even with K_SERVICE set (as on Cloud Run); its first
// requests, 20 at once, build the Gate once, and the routes answer 401,
// 403 and 200.
func TestFunctionBuildsOnce(t *testing.T) {
	t.Setenv("K_SERVICE", "things")
	s := memstore.New()
	f, builds, _ := countedFunction(t, s, DefaultConfig())
	FunctionFrom(func() (*Gate, error) { t.Error("FunctionFrom built a Gate under go test"); return nil, nil }, nil, nil)
	time.Sleep(10 * time.Millisecond) // a goroutine started by FunctionFrom would have run by now, mostly
	if n := builds.Load(); n != 0 {
		t.Fatalf("%d builds before the first request, want 0", n)
	}
	good, _ := testkit.MintKey(t, s, "acme", func(k *store.Key) { k.Scopes = []string{"things:read"}; k.CreatedAt = time.Now() })
	other, _ := testkit.MintKey(t, s, "acme", func(k *store.Key) { k.Scopes = []string{"other:read"}; k.CreatedAt = time.Now() })
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if w := get(f, good); w.Code != http.StatusOK || w.Body.String() != "hello" {
				t.Errorf("a key with the scope: %d %s", w.Code, w.Body)
			}
		})
	}
	wg.Wait()
	for key, want := range map[string]int{"": 401, other: 403} {
		if w := get(f, key); w.Code != want {
			t.Errorf("key %.8q: %d, want %d", key, w.Code, want)
		}
	}
	if n := builds.Load(); n != 1 {
		t.Errorf("%d builds, want 1", n)
	}
}

// TestFunctionMisconfigured: Function with a bad variable answers every
// request 500 misconfigured, revealing nothing, and logs the variable's
// name at ERROR each time; it never reaches for Firestore.
func TestFunctionMisconfigured(t *testing.T) {
	t.Setenv("KEY_CACHE_TTL", "sixty")
	log, logs := testkit.Logger()
	f := Function(func(*Gate) http.Handler { t.Error("routes built without a Gate"); return nil }, WithLogger(log))
	for range 2 {
		w := get(f, "")
		testkit.WantProblem(t, w, http.StatusInternalServerError, string(CodeMisconfigured))
		if strings.Contains(w.Body.String(), "KEY_CACHE_TTL") {
			t.Errorf("the answer reveals the configuration: %s", w.Body)
		}
	}
	if n := strings.Count(logs.String(), "KEY_CACHE_TTL"); n != 2 || !strings.Contains(logs.String(), `"severity":"ERROR"`) {
		t.Errorf("the log names the variable %d times at ERROR, want once a request:\n%s", n, logs)
	}
}

// TestFunctionWarm: warming, as on Cloud Run at the instance's start,
// builds the Gate and reads the store once; the first request then builds
// nothing more. With a store that hangs, warming ends after STORE_TIMEOUT
// with a warning, and a request is answered 503 within it, not a hang.
func TestFunctionWarm(t *testing.T) {
	t.Run("store up", func(t *testing.T) {
		s := &testkit.FaultyStore{Store: memstore.New()}
		f, builds, logs := countedFunction(t, s, DefaultConfig())
		f.warm(t.Context())
		if n, gets := builds.Load(), s.Gets.Load(); n != 1 || gets != 1 {
			t.Errorf("warming: %d builds and %d store reads, want 1 and 1", n, gets)
		}
		if s.ChangeReads.Load() == 0 {
			t.Errorf("warming did not start the change feed's first sync")
		}
		key, _ := testkit.MintKey(t, s, "acme", func(k *store.Key) { k.Scopes = []string{"things:read"}; k.CreatedAt = time.Now() })
		if w := get(f, key); w.Code != http.StatusOK || builds.Load() != 1 {
			t.Errorf("first request: %d %s, %d builds; want 200 and 1", w.Code, w.Body, builds.Load())
		}
		if strings.Contains(logs.String(), "WARNING") {
			t.Errorf("warming on a store that answers logged a warning:\n%s", logs)
		}
	})
	t.Run("store hangs", func(t *testing.T) {
		s := &testkit.FaultyStore{Store: memstore.New()}
		s.Hang.Store(true)
		cfg := DefaultConfig()
		cfg.StoreTimeout = 200 * time.Millisecond
		f, _, logs := countedFunction(t, s, cfg)
		start := time.Now()
		f.warm(t.Context())
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("warming on a hanging store took %v", took)
		}
		if !strings.Contains(logs.String(), "the key store does not answer at start-up") {
			t.Errorf("warming on a hanging store logged no warning:\n%s", logs)
		}
		key, _ := testkit.MintKey(t, s.Store, "acme")
		testkit.WantProblem(t, get(f, key), http.StatusServiceUnavailable, string(CodeStoreUnavailable))
	})
}
