package keygate

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/emulator"
)

// resetFunction clears the function's package-level state, so that the next
// API call builds it again from the environment, and sends its logs to a
// buffer.
func resetFunction(t *testing.T, store store.KeyStore) *syncBuffer {
	t.Helper()
	log, buf := testLogger()
	oldLog := defaultLog
	reset := func() {
		defaultOnce = sync.Once{}
		defaultStore, defaultErr = nil, nil
		defaultServer.Store(nil)
	}
	reset()
	defaultLog = log
	UseKeyStore(store)
	t.Cleanup(func() { reset(); defaultLog = oldLog })
	return buf
}

func callAPI(method, target, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	w := httptest.NewRecorder()
	API(w, r)
	return w
}

func TestAPI(t *testing.T) {
	store := memstore.New()
	resetFunction(t, store)
	key, _ := mintTestKey(t, store, "acme", func(k *store.Key) { k.CreatedAt = time.Now() })
	revoked, _ := mintTestKey(t, store, "acme", func(k *store.Key) { k.RevokedAt = time.Now() })
	cases := []struct {
		name, method, target, key string
		want                      int
		wantBody                  string
	}{
		{"valid key", "GET", "/", key, 200, `{"message":"Hello World"}`},
		{"no key", "GET", "/", "", 401, `"code":"missing_api_key"`},
		{"revoked key", "GET", "/", revoked, 401, `"code":"invalid_api_key"`},
		{"unknown path", "GET", "/v2/nothing", key, 404, `"code":"not_found"`},
		{"wrong method", "PUT", "/", key, 405, `"code":"method_not_allowed"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := callAPI(c.method, c.target, c.key)
			if w.Code != c.want || !strings.Contains(w.Body.String(), c.wantBody) {
				t.Errorf("%s %s = %d %s, want %d with %s", c.method, c.target, w.Code, w.Body, c.want, c.wantBody)
			}
		})
	}
}

func TestAPIKeepsStateAcrossInvocations(t *testing.T) {
	store := &testStore{KeyStore: memstore.New()}
	resetFunction(t, store)
	key, _ := mintTestKey(t, store, "acme", func(k *store.Key) { k.CreatedAt = time.Now() })
	for range 10 {
		if w := callAPI("GET", "/", key); w.Code != 200 {
			t.Fatal(w.Code)
		}
	}
	if n := store.gets.Load(); n != 1 {
		t.Errorf("10 invocations made %d store calls, want 1: one cache for the process", n)
	}
}

func TestAPIMisconfigured(t *testing.T) {
	logs := resetFunction(t, memstore.New())
	t.Setenv("KEY_CACHE_TTL", "sixty")
	w := callAPI("GET", "/", "")
	if w.Code != http.StatusInternalServerError || problemOf(t, w).Code != "misconfigured" {
		t.Errorf("misconfigured API = %d %s, want 500 misconfigured", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "KEY_CACHE_TTL") || !strings.Contains(logs.String(), `"severity":"ERROR"`) {
		t.Errorf("log does not name the variable at ERROR: %s", logs)
	}
	if strings.Contains(w.Body.String(), "KEY_CACHE_TTL") {
		t.Errorf("response reveals the configuration: %s", w.Body)
	}
}

// TestServerOnEmulator runs the function's hot path on the real Firestore
// emulator: keys minted into Firestore, checked through the cache.
func TestServerOnEmulator(t *testing.T) {
	cfg := emulatorConfig(t)
	store := &testStore{KeyStore: newEmulatorStore(t, func(c *Config) { *c = cfg })}
	log, _ := testLogger()
	clock := newFakeClock()
	s := NewServer(cfg, store, Options{Logger: log, Now: clock.Now})
	key, k := mintTestKey(t, store, "acme")
	expired, _ := mintTestKey(t, store, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(-time.Minute) })
	unknown, _ := keyformat.New("kg")
	get := func(key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	for _, c := range []struct {
		key  string
		want int
		code string
	}{{key, 200, ""}, {unknown, 401, "invalid_api_key"}, {expired, 401, "expired_api_key"}} {
		w := get(c.key)
		if w.Code != c.want || c.code != "" && problemOf(t, w).Code != c.code {
			t.Errorf("key %s = %d %s, want %d %s", keyformat.Hint(c.key), w.Code, w.Body, c.want, c.code)
		}
	}
	before := store.gets.Load()
	for range 20 {
		get(key)
	}
	if n := store.gets.Load() - before; n > 1 {
		t.Errorf("20 warm requests made %d store calls", n)
	}
	if _, err := store.Revoke(t.Context(), k.ID, t0); err != nil {
		t.Fatal(err)
	}
	if w := get(key); w.Code != 200 {
		t.Errorf("revoked key inside KEY_CACHE_TTL = %d, want 200 (the documented delay)", w.Code)
	}
	clock.Advance(cfg.CacheTTL)
	get(key) // served stale, and starts the refresh
	waitRefreshes(s.Keys())
	if w := get(key); w.Code != 401 {
		t.Errorf("revoked key after KEY_CACHE_TTL and one refresh = %d, want 401", w.Code)
	}
}

// traffic sends GET / with key to url from 8 goroutines until stop is
// closed or the server stops answering, and tallies the answers.
type traffic struct {
	ok, shuttingDown, other, failed atomic.Int64
	wg                              sync.WaitGroup
}

func sendTraffic(t *testing.T, url, key string, stop <-chan struct{}) *traffic {
	tr := &traffic{}
	client := &http.Client{Timeout: 10 * time.Second}
	for range 8 {
		tr.wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("X-API-Key", key)
				resp, err := client.Do(req)
				if err != nil {
					if tr.failed.Add(1) > 1000 {
						return // the server is gone
					}
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					tr.ok.Add(1)
				case resp.StatusCode == 503 && strings.Contains(string(body), `"shutting_down"`):
					if !resp.Close {
						t.Error("503 shutting_down without Connection: close")
					}
					tr.shuttingDown.Add(1)
				default:
					tr.other.Add(1)
					t.Errorf("status %d %s", resp.StatusCode, body)
				}
			}
		})
	}
	return tr
}

// checkStored checks that the store holds exactly the key's requests that
// were answered 200, and logs the figures; more is shown on failure.
func (tr *traffic) checkStored(t *testing.T, store store.UsageStore, id, more string) {
	t.Helper()
	stored, err := store.MonthlyUsage(context.Background(), id, store.MonthOf(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if stored != tr.ok.Load() {
		t.Errorf("stored %d, answered 200 %d (then %d shutting_down)\n%s", stored, tr.ok.Load(), tr.shuttingDown.Load(), more)
	}
	t.Logf("answered 200: %d, stored: %d, refused while shutting down: %d", tr.ok.Load(), stored, tr.shuttingDown.Load())
}

// waitFor waits until cond holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestTerminateUnderTraffic shuts a server down while requests keep
// arriving, before, during and after: every request answered 200 is stored,
// exactly once, and every later one is answered 503 shutting_down with
// Connection: close.
func TestTerminateUnderTraffic(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			store := impl.new(t)
			log, _ := testLogger()
			cfg := testConfig(func(c *Config) { c.FlushInterval, c.StoreTimeout = 20*time.Millisecond, 20*time.Second })
			s := NewServer(cfg, store, Options{Logger: log})
			key, k := mintTestKey(t, store, "acme")
			srv := httptest.NewServer(s)
			defer srv.Close()

			stop := make(chan struct{})
			tr := sendTraffic(t, srv.URL, key, stop)
			waitFor(t, "200 answers", func() bool { return tr.ok.Load() >= 300 })
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "refusals after Close", func() bool { return tr.shuttingDown.Load() >= 100 })
			close(stop)
			tr.wg.Wait()
			tr.checkStored(t, store, k.ID, "")
		})
	}
}

// terminateChildEnv names the file where TestTerminateChild, run as a child
// process, writes its address.
const terminateChildEnv = "KEYGATE_TEST_TERMINATE_CHILD"

// TestTerminateChild is not a test: TestTerminateSignalOnEmulator runs the
// test binary as a function instance with it, to send it a real SIGTERM.
func TestTerminateChild(t *testing.T) {
	addrFile := os.Getenv(terminateChildEnv)
	if addrFile == "" {
		t.Skip("run by TestTerminateSignalOnEmulator only")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(addrFile, []byte(l.Addr().String()), 0o600); err != nil {
		t.Fatal(err)
	}
	http.Serve(l, http.HandlerFunc(API)) // until SIGTERM ends the process
}

// TestTerminateSignalOnEmulator runs the function in a process of its own on
// the emulator, sends it SIGTERM while requests keep arriving, and checks
// that Firestore holds exactly the requests it answered 200.
func TestTerminateSignalOnEmulator(t *testing.T) {
	host, project := emulator.Project(t)
	store := firestorestore.New(emulatorConfig(t, func(c *Config) { c.Project = project }))
	t.Cleanup(func() { store.Close() })
	key, k := mintTestKey(t, store, "acme")

	addrFile := filepath.Join(t.TempDir(), "addr")
	var out syncBuffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestTerminateChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), terminateChildEnv+"="+addrFile, "FIRESTORE_EMULATOR_HOST="+host,
		"GOOGLE_CLOUD_PROJECT="+project, "USAGE_FLUSH_INTERVAL=1s", "STORE_TIMEOUT=5s")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	var addr []byte
	waitFor(t, "the child's address", func() bool { addr, _ = os.ReadFile(addrFile); return len(addr) > 0 })

	stop := make(chan struct{})
	tr := sendTraffic(t, "http://"+string(addr)+"/", key, stop)
	waitFor(t, "200 answers", func() bool { return tr.ok.Load() >= 300 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("child ended with %v, want death by the re-raised SIGTERM\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("child still running 30 s after SIGTERM\n%s", out.String())
	}
	close(stop)
	tr.wg.Wait()
	tr.checkStored(t, store, k.ID, out.String())
	if !strings.Contains(out.String(), "usage written before exit") {
		t.Errorf("no final flush logged:\n%s", out.String())
	}
}
