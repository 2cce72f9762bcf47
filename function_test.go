package keygate

// The Cloud Function's own tests: the function as deployed (the state it
// keeps across invocations, its configuration, its default scopes, its
// SIGTERM handling, in a child process of its own), and its Gate's Close,
// as cmd/local uses it.
// What the Gate does behind it is tested in package apikey.

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/faultproxy"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/meter"
	"github.com/keygate/keygate/internal/testkit"
)

func TestMain(m *testing.M) {
	os.Exit(emulator.Main(m))
}

// env is a getenv that reads vars only.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// newTestAPI returns the function as deployed (newAPI), configured by vars,
// with its keys in s (nil: Firestore) and its logs in the buffer returned,
// its traffic checked against its OpenAPI document (checked). Its Gate,
// once a call builds it, is closed when the test ends.
func newTestAPI(t *testing.T, vars map[string]string, s store.Store) (http.Handler, *testkit.SyncBuffer) {
	t.Helper()
	l, buf := testkit.Logger()
	var environ []string
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	a, gate := newAPI(env(vars), environ, s, l)
	t.Cleanup(func() {
		if g, err := gate(); err == nil {
			closeGate(t, g)
		}
	})
	return checked(t, vars, a), buf
}

// closeGate closes g, failing t when counts are left unwritten.
func closeGate(t *testing.T, g *apikey.Gate) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.Close(ctx); err != nil {
		t.Errorf("closing the function's Gate: %v", err)
	}
}

// newTestFunction is NewGate with vars, s and logs in the buffer returned,
// and the function's routes behind it, their traffic checked against the
// OpenAPI document (checked); the Gate is closed when the test ends.
func newTestFunction(t *testing.T, vars map[string]string, s store.Store) (*apikey.Gate, http.Handler, *testkit.SyncBuffer) {
	t.Helper()
	l, buf := testkit.Logger()
	g, err := NewGate(env(vars), s, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeGate(t, g) })
	return g, checked(t, vars, Handler(g)), buf
}

func TestAPI(t *testing.T) {
	s := memstore.New()
	a, _ := newTestAPI(t, nil, s)
	key, _ := testkit.MintKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = time.Now() })
	revoked, _ := testkit.MintKey(t, s, "acme", func(k *store.Key) { k.RevokedAt = time.Now() })
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
		// A key stored without scopes has the function's DefaultScopes.
		{"default scope usage:read", "GET", "/v1/usage", key, 200, `"month_total":`},
		{"keys:manage is not a default scope", "GET", "/v1/keys", key, 403, `"code":"insufficient_scope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := serve(a, c.method, c.target, "", c.key)
			if w.Code != c.want || !strings.Contains(w.Body.String(), c.wantBody) {
				t.Errorf("%s %s = %d %s, want %d with %s", c.method, c.target, w.Code, w.Body, c.want, c.wantBody)
			}
		})
	}
}

// TestAPIDefaultScopesFromEnvironment: KEY_DEFAULT_SCOPES replaces the
// function's DefaultScopes for keys stored without scopes.
func TestAPIDefaultScopesFromEnvironment(t *testing.T) {
	s := memstore.New()
	a, _ := newTestAPI(t, map[string]string{"KEY_DEFAULT_SCOPES": ScopeKeysManage}, s)
	key, _ := testkit.MintKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = time.Now() })
	if w := serve(a, "GET", "/v1/keys", "", key); w.Code != http.StatusOK {
		t.Errorf("GET /v1/keys with KEY_DEFAULT_SCOPES=keys:manage = %d %s, want 200", w.Code, w.Body)
	}
	w := serve(a, "GET", "/v1/usage", "", key)
	if p := testkit.WantProblem(t, w, http.StatusForbidden, "insufficient_scope"); p.Scope != ScopeUsageRead {
		t.Errorf("scope = %q, want %s", p.Scope, ScopeUsageRead)
	}
}

// TestAPIKeepsStateAcrossInvocations: the deployed function is built once,
// by its first requests, also when 20 arrive at once, and its cache serves
// the invocations after them; two functions, as two instances, keep a
// cache each.
func TestAPIKeepsStateAcrossInvocations(t *testing.T) {
	s := &testkit.FaultyStore{Store: memstore.New()}
	a, _ := newTestAPI(t, nil, s)
	key, _ := testkit.MintKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = time.Now() })
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if w := serve(a, "GET", "/", "", key); w.Code != 200 {
				t.Error(w.Code)
			}
		})
	}
	wg.Wait()
	for range 10 {
		if w := serve(a, "GET", "/", "", key); w.Code != 200 {
			t.Fatal(w.Code)
		}
	}
	if n := s.Gets.Load(); n != 1 {
		t.Errorf("30 invocations, 20 of them at once, made %d store calls, want 1: one Gate and one cache for the process", n)
	}
	other, _ := newTestAPI(t, nil, s)
	if w := serve(other, "GET", "/", "", key); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if n := s.Gets.Load(); n != 2 {
		t.Errorf("a second instance's first invocation: %d store calls in all, want 2: a cache of its own", n)
	}
}

// TestAPIMisconfigured: a bad variable makes every request a 500 that does
// not reveal the configuration, each logged at ERROR with the variable's
// name; NewGate's error names it too.
func TestAPIMisconfigured(t *testing.T) {
	vars := map[string]string{"KEY_CACHE_TTL": "sixty"}
	a, logs := newTestAPI(t, vars, memstore.New())
	for range 2 {
		w := serve(a, "GET", "/", "", "")
		if w.Code != http.StatusInternalServerError || testkit.Problem(t, w).Code != "misconfigured" {
			t.Errorf("misconfigured API = %d %s, want 500 misconfigured", w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), "KEY_CACHE_TTL") {
			t.Errorf("response reveals the configuration: %s", w.Body)
		}
	}
	if n := strings.Count(logs.String(), "KEY_CACHE_TTL"); n != 2 || !strings.Contains(logs.String(), `"severity":"ERROR"`) {
		t.Errorf("log names the variable %d times at ERROR, want once a request: %s", n, logs)
	}
	if _, err := NewGate(env(vars), memstore.New(), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "KEY_CACHE_TTL") {
		t.Errorf("NewGate = %v, want an error naming KEY_CACHE_TTL", err)
	}
}

// TestAPIWarnsOfMistypedVariables: the deployed function logs a variable
// one edit from one it reads (KEY_CACHE_TL) at WARNING once, when it is
// built, naming the variable meant and not the value, and serves on.
func TestAPIWarnsOfMistypedVariables(t *testing.T) {
	a, logs := newTestAPI(t, map[string]string{"KEY_CACHE_TL": "5m-s3cret", "REDIS_HOST": "10.0.0.3"}, memstore.New())
	for range 2 {
		if w := serve(a, "GET", "/", "", ""); w.Code != http.StatusUnauthorized {
			t.Errorf("GET / without a key = %d, want 401", w.Code)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "KEY_CACHE_TL is set, but no variable of that name is read: did you mean KEY_CACHE_TTL?"); n != 1 || !strings.Contains(out, `"severity":"WARNING"`) {
		t.Errorf("the log warns of KEY_CACHE_TL %d times, want once at WARNING: %s", n, out)
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, "REDIS_HOST") {
		t.Errorf("the log holds a value, or a variable far from any read: %s", out)
	}
}

// TestShutdown: closing the function's Gate (as cmd/local does on SIGTERM)
// writes what was counted, the function refuses what comes next with 503
// shutting_down, and a second Close is harmless.
func TestShutdown(t *testing.T) {
	s := memstore.New()
	g, f, _ := newTestFunction(t, nil, s)
	key, k := testkit.MintKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = time.Now() })
	for range 3 {
		if w := serve(f, "GET", "/", "", key); w.Code != http.StatusOK {
			t.Fatalf("GET / = %d %s", w.Code, w.Body)
		}
	}
	if err := g.Close(t.Context()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if n, err := s.MonthlyUsage(t.Context(), k.ID, store.MonthOf(time.Now())); err != nil || n != 3 {
		t.Errorf("usage stored after Close = %d, %v; want the 3 requests answered", n, err)
	}
	w := serve(f, "GET", "/", "", key)
	testkit.WantProblem(t, w, http.StatusServiceUnavailable, "shutting_down")
	if w.Header().Get("Connection") != "close" {
		t.Errorf("503 shutting_down without Connection: close")
	}
	if err := g.Close(t.Context()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// TestTerminateUnderTraffic closes the function's Gate (as cmd/local
// does on SIGTERM) while requests keep arriving, before, during
// and after: every request answered 200 is stored, exactly once, and every
// later one is answered 503 shutting_down with Connection: close. On the
// emulator the function finds Firestore itself, from its configuration.
func TestTerminateUnderTraffic(t *testing.T) {
	for _, impl := range []struct {
		name string
		// setup returns the function's variables and store (nil:
		// Firestore), and the store to mint the key in and read the usage
		// from.
		setup func(t *testing.T) (vars map[string]string, chosen store.Store, s store.Store)
	}{
		{"memory", func(t *testing.T) (map[string]string, store.Store, store.Store) {
			m := memstore.New()
			return nil, m, m
		}},
		{"firestore", func(t *testing.T) (map[string]string, store.Store, store.Store) {
			_, project := emulator.Project(t)
			s := firestorestore.New(firestorestore.Config{Project: project})
			t.Cleanup(func() { s.Close() })
			return map[string]string{"GOOGLE_CLOUD_PROJECT": project}, nil, s
		}},
	} {
		t.Run(impl.name, func(t *testing.T) {
			vars, chosen, s := impl.setup(t)
			if vars == nil {
				vars = map[string]string{}
			}
			vars["USAGE_FLUSH_INTERVAL"] = "1s"
			vars["STORE_TIMEOUT"] = "20s" // the emulator's first calls, on a cold JVM
			g, f, logs := newTestFunction(t, vars, chosen)
			key, k := testkit.MintKey(t, s, "acme")
			srv := httptest.NewServer(f)
			defer srv.Close()

			stop := make(chan struct{})
			tr := testkit.SendTraffic(t, srv.URL, key, stop)
			testkit.WaitFor(t, "200 answers", func() bool { return tr.OK.Load() >= 300 })
			if err := g.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, "refusals after Close", func() bool { return tr.ShuttingDown.Load() >= 100 })
			close(stop)
			tr.WG.Wait()
			tr.CheckStored(t, s, k.ID, store.MonthOf(time.Now()), logs.String())
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
	api, _ := newAPI(os.Getenv, os.Environ(), nil, logging.NewLogger(os.Stdout))
	http.Serve(l, api) // until SIGTERM ends the process; as init registers it
}

// TestTerminateSignalOnEmulator runs the function in a process of its own on
// the emulator, behind a fault proxy, sends it SIGTERM while requests keep
// arriving, and checks that Firestore holds exactly the requests it answered
// 200, once the usage_unwritten entries it logged, if any, are replayed
// (twice: the second adds nothing), and that the function re-raised the
// signal within its SHUTDOWN_TIMEOUT. The store, at the signal:
//
//   - up;
//   - hanging, for the whole grace: every count is logged, none written;
//   - back from an outage that began with a commit applied and its answer
//     lost (issue 18's double count): the batch in doubt is resent under its
//     seq, not merged into a new one.
//
// Run the last one many times with
// go test -run 'TestTerminateSignalOnEmulator/lost' -count=20 .
func TestTerminateSignalOnEmulator(t *testing.T) {
	const grace = 6 * time.Second // SHUTDOWN_TIMEOUT
	for _, c := range []struct {
		name string
		// fault sets the proxy's fault once the function has answered 300
		// requests, and waits for it to take hold; it returns after the
		// signal is sent, to end the fault.
		fault func(t *testing.T, p *faultproxy.Proxy) (after func())
		// logged is whether the child must leave counts to replay: "no",
		// "yes", or "either" where that depends on how soon the store
		// answers again within the grace (on a loaded machine, it may not).
		logged string
	}{
		{"up", func(*testing.T, *faultproxy.Proxy) func() { return func() {} }, "no"},
		{"hanging for the whole grace", func(_ *testing.T, p *faultproxy.Proxy) func() {
			p.Set(faultproxy.Hang)
			return func() { time.Sleep(grace + time.Second); p.Set(faultproxy.Up) }
		}, "yes"},
		{"lost answer, an outage, SIGTERM after it", func(t *testing.T, p *faultproxy.Proxy) func() {
			p.LoseCommitAnswers(1, 3*time.Second) // then UNAVAILABLE for 3 s
			testkit.WaitFor(t, "a commit applied and its answer lost", func() bool { return p.LostCommits() >= 1 })
			time.Sleep(5 * time.Second) // flushes fail during the outage, then succeed
			return func() {}
		}, "either"},
		{"lost answer, SIGTERM during the outage", func(t *testing.T, p *faultproxy.Proxy) func() {
			p.LoseCommitAnswers(1, 3*time.Second)
			testkit.WaitFor(t, "a commit applied and its answer lost", func() bool { return p.LostCommits() >= 1 })
			return func() {}
		}, "either"},
	} {
		t.Run(c.name, func(t *testing.T) {
			host, project := emulator.Project(t)
			s := firestorestore.New(firestorestore.Config{Project: project})
			t.Cleanup(func() { s.Close() })
			key, k := testkit.MintKey(t, s, "acme")
			proxy, err := faultproxy.Start(host)
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()

			addrFile := filepath.Join(t.TempDir(), "addr")
			var out testkit.SyncBuffer
			cmd := exec.Command(os.Args[0], "-test.run=^TestTerminateChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), terminateChildEnv+"="+addrFile, "FIRESTORE_EMULATOR_HOST="+proxy.Addr(),
				"GOOGLE_CLOUD_PROJECT="+project, "USAGE_FLUSH_INTERVAL=1s", "STORE_TIMEOUT=1s",
				"SHUTDOWN_TIMEOUT="+grace.String())
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer cmd.Process.Kill()
			var addr []byte
			testkit.WaitFor(t, "the child's address", func() bool { addr, _ = os.ReadFile(addrFile); return len(addr) > 0 })

			stop := make(chan struct{})
			tr := testkit.SendTraffic(t, "http://"+string(addr)+"/", key, stop)
			testkit.WaitFor(t, "200 answers", func() bool { return tr.OK.Load() >= 300 })
			after := c.fault(t, proxy)
			testkit.WaitFor(t, "more 200 answers", func() bool { return tr.OK.Load() >= 600 })
			signalled := time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			after()
			select {
			case err := <-exited:
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
					t.Errorf("child ended with %v, want death by the re-raised SIGTERM\n%s", err, out.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("child still running 30 s after SIGTERM\n%s", out.String())
			}
			if took := time.Since(signalled); took > grace+2*time.Second {
				t.Errorf("the child took %v after SIGTERM, more than SHUTDOWN_TIMEOUT %v and a margin", took, grace)
			}
			close(stop)
			tr.WG.Wait()

			batches, err := meter.ReadUnwritten(strings.NewReader(out.String()))
			if err != nil {
				t.Fatal(err)
			}
			if logged := len(batches) > 0; c.logged != "either" && logged != (c.logged == "yes") {
				t.Errorf("%d batches logged as %s, want %s\n%s", len(batches), meter.UnwrittenKey, c.logged, out.String())
			}
			if (len(batches) > 0) == strings.Contains(out.String(), "usage written before exit") {
				t.Errorf("the child's last log line does not say whether usage was written:\n%s", out.String())
			}
			t.Logf("%d batches logged as %s", len(batches), meter.UnwrittenKey)
			for range 2 {
				if err := meter.Replay(t.Context(), s, batches); err != nil {
					t.Fatal(err)
				}
				tr.CheckStored(t, s, k.ID, store.MonthOf(time.Now()), out.String())
			}
		})
	}
}

// TestGateBuiltAtInstanceStart runs the function as Cloud Run does, in the
// Functions Framework (bench/ffserver) with K_SERVICE set, its store an
// emulator address where nothing answers: before any request, the Gate is
// built and reads the store, and says it does not answer. Without
// K_SERVICE, nothing is built until a request comes.
func TestGateBuiltAtInstanceStart(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ffserver")
	if out, err := exec.Command("go", "build", "-o", bin, "./bench/ffserver").CombinedOutput(); err != nil {
		t.Fatalf("go build ./bench/ffserver: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	const warning = "the key store does not answer at start-up"
	for _, onCloudRun := range []bool{true, false} {
		var out testkit.SyncBuffer
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "FUNCTION_TARGET=API", "PORT=0", "FIRESTORE_EMULATOR_HOST="+dead,
			"GOOGLE_CLOUD_PROJECT=demo-start", "STORE_TIMEOUT=300ms", "K_SERVICE=")
		if onCloudRun {
			cmd.Env = append(cmd.Env, "K_SERVICE=keygate")
		}
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if onCloudRun {
			testkit.WaitFor(t, "the start-up warning", func() bool { return strings.Contains(out.String(), warning) })
		} else {
			time.Sleep(2 * time.Second) // the start-up read, had it begun, would have failed after 300 ms
			if strings.Contains(out.String(), warning) {
				t.Errorf("without K_SERVICE, the store was read before any request:\n%s", out.String())
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
}
