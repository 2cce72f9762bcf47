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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testkit"
)

// Issue 34's "done when", on a fleet: Gates built as the function builds
// them (NewGate, REDIS_URL in the environment) on one redis-server and one
// store, under concurrent clients. They are written against the function's
// behaviour only (answers, stored usage, Redis's own counters), so that
// they hold for the limits on Redis however these take their decisions:
// one script per request, or leases.

// restartEnv runs TestFleetQuota's Redis restart cases, which fail today:
// one script per request admitted 1,169 of 1,000 with 2 Gates and 1,385
// with 8, and the leases of 339c023 1,185 and 1,435, since a Redis that
// restarts empty is seeded with the usage one instance knows (the store's
// total and its own unwritten counts), not the fleet's, and forgets the
// blocks leased. Issue 34 is not done until they pass without it.
const restartEnv = "KEYGATE_TEST_REDIS_RESTART"

// fleetOwner is the owner whose plan the fleet's tests limit.
const fleetOwner = "fleet"

// fleetVars is the environment of a fleet's Gate on rds: a Redis deadline
// no stall of a loaded machine reaches, since the exactness tests must not
// measure the per-instance fallback, and the meter's default flushes.
func fleetVars(rds *redistest.Server) map[string]string {
	return map[string]string{"REDIS_URL": rds.URL(), "REDIS_TIMEOUT": "10s", "STORE_TIMEOUT": "20s"}
}

// member is one Gate of a fleet, in this process, and its answers.
type member struct {
	gate                *apikey.Gate
	h                   http.Handler
	admitted, refused   atomic.Int64
	unexpected, failure atomic.Int64 // statuses other than 200 and 429: any 5xx, any 401
	logs                *testkit.SyncBuffer
}

// newFleet returns n Gates configured by vars on st, their traffic checked
// against the OpenAPI document (checked), closed when the test ends (closeFleet closes them before, to read what they stored).
func newFleet(t testing.TB, n int, st store.Store, vars map[string]string) []*member {
	t.Helper()
	var fleet []*member
	for range n {
		l, buf := testkit.Logger()
		g, err := NewGate(env(vars), st, l)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close(context.Background()) })
		fleet = append(fleet, &member{gate: g, h: checked(t, vars, Handler(g)), logs: buf})
	}
	return fleet
}

// get serves GET / with key, counts the answer, and returns its status.
func (m *member) get(t testing.TB, key string) int {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	m.h.ServeHTTP(w, r)
	count(t, &m.admitted, &m.refused, &m.unexpected, w.Code, w.Body.String())
	return w.Code
}

// count adds an answer to the counters: a 429 must be the owner's quota or
// rate; anything but 200 and 429 is an error of the test.
func count(t testing.TB, admitted, refused, unexpected *atomic.Int64, code int, body string) {
	switch code {
	case 200:
		admitted.Add(1)
	case 429:
		refused.Add(1)
		if !strings.Contains(body, `"limit":"owner"`) {
			t.Errorf("429 not the owner's: %s", body)
		}
	default:
		unexpected.Add(1)
		t.Errorf("status %d %s", code, body)
	}
}

// closeFleet closes each Gate, writing its counts.
func closeFleet(t testing.TB, fleet []*member) {
	t.Helper()
	for _, m := range fleet {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := m.gate.Close(ctx); err != nil {
			t.Errorf("closing a Gate: %v", err)
		}
		cancel()
	}
}

// admittedBy sums the fleet's 200s.
func admittedBy(fleet []*member) (n int64) {
	for _, m := range fleet {
		n += m.admitted.Load()
	}
	return n
}

// ownerUsage is the owner's usage of this month in st.
func ownerUsage(t testing.TB, st store.Store) int64 {
	t.Helper()
	n, err := st.OwnerMonthlyUsage(context.Background(), fleetOwner, store.MonthOf(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fleetKey stores the owner's plan and mints a key of the owner, created
// now (the Gates run on the real clock).
func fleetKey(t testing.TB, st store.Store, plan store.Plan) string {
	t.Helper()
	plan.Owner = fleetOwner
	if err := st.SetPlan(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	key, _ := testkit.MintKey(t, st, fleetOwner, func(k *store.Key) { k.CreatedAt = time.Now() })
	return key
}

// drain runs clients goroutines per Gate, each sending GET / with key until
// it is refused and done() holds (done is checked only after a refusal, so
// that demand always exceeds what is left), or until deadline; after a
// refusal a client waits pause before asking again, so that a fleet waiting
// for leases to come back does not spin. Each request holds hold's read
// lock, so that holding it for writing stops the traffic.
func drain(t *testing.T, fleet []*member, key string, clients int, deadline time.Duration, pause time.Duration, hold *sync.RWMutex, done func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	var wg sync.WaitGroup
	for _, m := range fleet {
		for range clients {
			wg.Go(func() {
				for time.Now().Before(end) {
					hold.RLock()
					code := m.get(t, key)
					hold.RUnlock()
					if code == 429 {
						if done() {
							return
						}
						time.Sleep(pause)
					}
				}
			})
		}
	}
	wg.Wait()
}

// quotaBounds checks the bounds on a quota of 1,000 under demand
// that exceeds it: at most 1,000 admitted, always, and at least 990; and
// that the store holds what was admitted, once.
func quotaBounds(t *testing.T, admitted, stored int64) {
	t.Helper()
	if admitted > 1000 || admitted < 990 {
		t.Errorf("admitted %d of an owner quota of 1,000, want 990 to 1,000", admitted)
	}
	if stored != admitted {
		t.Errorf("stored %d, admitted %d", stored, admitted)
	}
}

// TestFleetQuota: two and then eight Gates on one redis-server and one
// store, an owner quota of 1,000, 16 concurrent clients at each Gate that
// go on until they are refused (more than 1,000 requests in all): at most
// 1,000 are admitted, at least 990, and the store holds as many once the
// Gates are closed. With Redis restarted (empty, on the same port) when a
// third of the quota is spent, the same: the clients wait while it
// restarts, since a request that finds Redis down gets the per-instance
// fallback, whose bound is another (docs/reference.md); what is tested is
// that what Redis lost (counts, leases) is not admitted twice.
func TestFleetQuota(t *testing.T) {
	for _, c := range []struct {
		name    string
		gates   int
		restart bool
	}{
		{"2 gates", 2, false},
		{"8 gates", 8, false},
		{"2 gates, Redis restarted", 2, true},
		{"8 gates, Redis restarted", 8, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.restart && os.Getenv(restartEnv) == "" {
				t.Skip("over-admits today (issue 34, not done): run with " + restartEnv + "=1")
			}
			rds := redistest.Start(t)
			st := memstore.New()
			key := fleetKey(t, st, store.Plan{MonthlyQuota: 1000})
			fleet := newFleet(t, c.gates, st, fleetVars(rds))
			var restarted atomic.Int64 // the fleet's 200s when Redis came back, +1
			var hold sync.RWMutex
			if c.restart {
				go func() {
					for admittedBy(fleet) < 333 {
						time.Sleep(time.Millisecond)
					}
					hold.Lock()
					rds.Restart()
					restarted.Store(admittedBy(fleet) + 1)
					hold.Unlock()
				}()
			}
			drain(t, fleet, key, 16, time.Minute, 10*time.Millisecond, &hold, func() bool {
				return !c.restart || restarted.Load() != 0
			})
			if c.restart && restarted.Load() == 0 {
				t.Fatal("the quota was spent before Redis restarted")
			}
			admitted := admittedBy(fleet)
			closeFleet(t, fleet)
			stored := ownerUsage(t, st)
			var refused int64
			for _, m := range fleet {
				refused += m.refused.Load()
			}
			t.Logf("%d Gates × 16 clients, owner quota 1,000: admitted %d, refused %d, stored %d", c.gates, admitted, refused, stored)
			if c.restart {
				t.Logf("Redis restarted after %d admitted", restarted.Load()-1)
			}
			quotaBounds(t, admitted, stored)
		})
	}
}

// fleetChildEnv names the file where TestFleetChild, run as a child
// process, writes its address.
const fleetChildEnv = "KEYGATE_TEST_FLEET_CHILD"

// TestFleetChild is not a test: TestFleetQuotaFrozenGate runs the test
// binary with it as a Gate in a process of its own, to freeze it.
func TestFleetChild(t *testing.T) {
	addrFile := os.Getenv(fleetChildEnv)
	if addrFile == "" {
		t.Skip("run by TestFleetQuotaFrozenGate only")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(addrFile, []byte(l.Addr().String()), 0o600); err != nil {
		t.Fatal(err)
	}
	api, _ := newAPI(os.Getenv, os.Environ(), nil, logging.NewLogger(os.Stdout))
	http.Serve(l, api) // until SIGTERM ends the process, after its Gate's Close
}

// TestFleetQuotaFrozenGate: a Gate in a process of its own admits 100
// requests of an owner quota of 1,000 under 16 clients and is frozen
// (SIGSTOP) under their traffic, holding a lease and requests in flight;
// two Gates in this process go on until the quota is spent, or until they
// admit nothing more: at least 981 admitted before it is thawed (what it
// holds is spent). Thawed, it answers its requests in flight and 20 more
// within the quota, none of them by its own limits (Redis never went
// away); the three together admit at most 1,000, and at least 990, and,
// once the child has stopped on SIGTERM (writing its counts), the store on
// the emulator holds as many.
func TestFleetQuotaFrozenGate(t *testing.T) {
	rds := redistest.Start(t)
	host, project := emulator.Project(t)
	st := firestorestore.New(firestorestore.Config{Project: project})
	t.Cleanup(func() { st.Close() })
	key := fleetKey(t, st, store.Plan{MonthlyQuota: 1000})
	vars := fleetVars(rds)
	// The project names the Redis counts as it names the store's documents.
	vars["GOOGLE_CLOUD_PROJECT"] = project

	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFleetChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fleetChildEnv+"="+addrFile, "FIRESTORE_EMULATOR_HOST="+host, "GOOGLE_CLOUD_PROJECT="+project,
		"REDIS_URL="+vars["REDIS_URL"], "REDIS_TIMEOUT="+vars["REDIS_TIMEOUT"], "STORE_TIMEOUT="+vars["STORE_TIMEOUT"])
	var out testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	var addr []byte
	testkit.WaitFor(t, "the child's address", func() bool { addr, _ = os.ReadFile(addrFile); return len(addr) > 0 })
	url := "http://" + string(addr) + "/"
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var childOK, childRefused, childOther atomic.Int64
	send := func() int {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("the child: %v", err)
			return 0
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		count(t, &childOK, &childRefused, &childOther, resp.StatusCode, string(body))
		return resp.StatusCode
	}

	// The child is frozen under its clients' traffic, once it has admitted
	// 100: holding a lease (with leases) and some requests in flight, which
	// are answered when it is thawed.
	var wg sync.WaitGroup
	var stopChild atomic.Bool
	for range 16 {
		wg.Go(func() {
			for !stopChild.Load() && send() != 0 {
			}
		})
	}
	testkit.WaitFor(t, "100 admitted by the child", func() bool { return childOK.Load() >= 100 || t.Failed() })
	cmd.Process.Signal(syscall.SIGSTOP)
	stopChild.Store(true)
	beforeFreeze := childOK.Load()
	frozen := true
	defer func() {
		if frozen {
			cmd.Process.Signal(syscall.SIGCONT)
		}
	}()

	// The others go on until the quota is spent, or until they have admitted
	// nothing for 15 s, past a lease's life (at most 10 s), or a minute.
	fleet := newFleet(t, 2, st, vars)
	start := time.Now()
	var mu sync.Mutex
	last, lastAt := int64(0), time.Now()
	drain(t, fleet, key, 16, time.Minute, 20*time.Millisecond, new(sync.RWMutex), func() bool {
		mu.Lock()
		defer mu.Unlock()
		if n := admittedBy(fleet); n != last {
			last, lastAt = n, time.Now()
		}
		return beforeFreeze+last >= 1000 || time.Since(lastAt) > 15*time.Second
	})
	took := time.Since(start)
	others := admittedBy(fleet)

	// Thawed, the child answers; its lease, if it held one, may have been
	// taken back: what it admits now still counts against the quota.
	cmd.Process.Signal(syscall.SIGCONT)
	frozen = false
	wg.Wait()
	thawed := childOK.Load()
	for range 20 {
		send()
	}
	admitted := childOK.Load() + admittedBy(fleet)
	closeFleet(t, fleet)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the child still runs 30 s after SIGTERM:\n%s", out.String())
	}
	stored := ownerUsage(t, st)
	t.Logf("a child Gate admitted %d, was frozen; 2 Gates × 16 clients admitted %d in %v; thawed, the child answered its requests in flight (%d admitted) and admitted %d of 20 more: %d admitted, stored %d",
		beforeFreeze, others, took.Round(time.Millisecond), thawed-beforeFreeze, childOK.Load()-thawed, admitted, stored)
	quotaBounds(t, admitted, stored)
	// Units the frozen Gate took before it froze are spent, not given back
	// while it is stopped: the unit of each of its 16 requests in flight
	// (taken from its block or one by one, answered after the thaw) and the
	// quota block in its hand, at most 3 (1,000 over the divisor of 256: a
	// block is refilled only once it is empty, at most 1/256 of what is
	// left). So at least 1,000 - 16 - 3 are admitted while it is frozen.
	if beforeFreeze+others < 1000-16-3 {
		t.Errorf("with one Gate frozen, %d + %d admitted: more than its requests in flight and its block lost to the others", beforeFreeze, others)
	}
	// Redis answered throughout: the child, paused, must not have taken its
	// timers firing as it woke for an outage, and admitted by its own view.
	if strings.Contains(out.String(), "Redis unavailable") {
		t.Errorf("the child took its pause for a Redis outage:\n%s", out.String())
	}
	if childOther.Load() != 0 {
		t.Errorf("the child answered %d requests with neither 200 nor 429:\n%s", childOther.Load(), out.String())
	}
}

// idealBucket is how many of the requests sent at times sent a token bucket
// of rate a second and burst admits: the most a perfect rate limit admits
// of that traffic, whatever stalls the sender had.
func idealBucket(sent []time.Time, rate, burst float64) (n int64) {
	slices.SortFunc(sent, time.Time.Compare)
	tokens, last := burst, time.Time{}
	for i, at := range sent {
		if i > 0 {
			tokens = min(burst, tokens+at.Sub(last).Seconds()*rate)
		}
		last = at
		if tokens >= 1 {
			tokens--
			n++
		}
	}
	return n
}

// TestFleetRate: an owner rate of 50 a second with a burst of 50, for 20 s
// at 100 requests a second from each of 4 Gates (a ticker each): at most
// 50·W + 50 + 4 admitted, W the window from the first request sent to the
// last answered (20 s, a little more on a loaded machine), and at least 90 %
// of what a perfect bucket admits of the requests as they were actually
// sent (1,050 when the senders keep pace; less when a loaded machine makes
// them skip ticks). About 20 s: not with -short.
func TestFleetRate(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s of paced traffic: runs without -short")
	}
	const gates, perGate, d = 4, 100, 20 * time.Second
	rds := redistest.Start(t)
	st := memstore.New()
	key := fleetKey(t, st, store.Plan{RateLimit: 50, Burst: 50})
	fleet := newFleet(t, gates, st, fleetVars(rds))
	for _, m := range fleet { // the key read, so that the 20 s are all traffic: not counted
		r := httptest.NewRequest("GET", "/v1/keys/none", nil)
		r.Header.Set("X-API-Key", key)
		m.h.ServeHTTP(httptest.NewRecorder(), r)
	}
	var mu sync.Mutex
	var sent []time.Time
	var wg sync.WaitGroup
	start := time.Now()
	for _, m := range fleet {
		wg.Go(func() {
			tick := time.NewTicker(time.Second / perGate)
			defer tick.Stop()
			var in sync.WaitGroup
			for now := range tick.C {
				if now.Sub(start) >= d {
					break
				}
				at := time.Now()
				mu.Lock()
				sent = append(sent, at)
				mu.Unlock()
				in.Go(func() { m.get(t, key) })
			}
			in.Wait()
		})
	}
	wg.Wait()
	window := time.Since(start)
	admitted := admittedBy(fleet)
	most := int64(50*window.Seconds()) + 50 + gates
	ideal := idealBucket(sent, 50, 50)
	t.Logf("rate 50/s burst 50, %v at %d/s from each of %d Gates: sent %d, admitted %d (a perfect bucket: %d; at most %d in the %v window)",
		d, perGate, gates, len(sent), admitted, ideal, most, window.Round(time.Millisecond))
	if admitted > most {
		t.Errorf("admitted %d, want at most 50·%.1f + 50 + %d = %d", admitted, window.Seconds(), gates, most)
	}
	if least := ideal * 9 / 10; admitted < least {
		t.Errorf("admitted %d, want at least 90 %% of the %d a perfect bucket admits of what was sent: %d", admitted, ideal, least)
	}
}

// TestFleetRedisFrozen: two Gates under traffic (16 clients each), the key
// far from its owner's limits, the default REDIS_TIMEOUT; the redis-server
// is frozen (SIGSTOP) for 3 s and then resumed. Every request is admitted:
// no 5xx, no 401, no 429; at most one WARNING of Redis per Gate (they come
// at most every 10 s); and the store holds every admitted request once.
// What the freeze costs in latency is a benchmark's figure, not this
// test's: BenchmarkFleetGet, limits=redis-frozen.
func TestFleetRedisFrozen(t *testing.T) {
	rds := redistest.Start(t)
	st := memstore.New()
	key := fleetKey(t, st, store.Plan{RateLimit: 1e6, Burst: 1e6, MonthlyQuota: 1e7})
	fleet := newFleet(t, 2, st, map[string]string{"REDIS_URL": rds.URL()})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, m := range fleet {
		for range 16 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
						m.get(t, key)
					}
				}
			})
		}
	}
	time.Sleep(time.Second)
	up := admittedBy(fleet)
	rds.Freeze()
	time.Sleep(3 * time.Second)
	frozen := admittedBy(fleet) - up
	rds.Thaw()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	admitted := admittedBy(fleet)
	var refused, warnings int64
	for _, m := range fleet {
		refused += m.refused.Load()
		warnings += int64(strings.Count(m.logs.String(), "Redis unavailable"))
	}
	closeFleet(t, fleet)
	stored := ownerUsage(t, st)
	t.Logf("2 Gates × 16 clients: %d admitted in 1 s with Redis up, %d in 3 s frozen, %d in all; %d refused; %d WARNINGs; stored %d",
		up, frozen, admitted, refused, warnings, stored)
	if refused != 0 {
		t.Errorf("%d requests refused, far from the limits", refused)
	}
	if frozen == 0 {
		t.Error("no request admitted while Redis was frozen")
	}
	if warnings > int64(len(fleet)) {
		t.Errorf("%d WARNINGs of Redis from %d Gates in 5 s, want at most one each", warnings, len(fleet))
	}
	if stored != admitted {
		t.Errorf("stored %d, admitted %d", stored, admitted)
	}
}
