package globallimit

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/ratelimit"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testkit"
)

func leases(o *Options) { o.Leases = true }

// ownerCount is the server's count of the owner's month in request's
// defaults.
func ownerCount(t *testing.T, srv *redistest.Server) int64 {
	t.Helper()
	n, err := srv.Client().Get(context.Background(), "test:{acme}:quota:owner:2026-12").Int64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLeasesQuotaManyLimiters: eight instances of 16 concurrent clients
// each, on one server, at an owner's quota of 1,000 and then of 100,000:
// never more admitted than the quota, all of it admitted (demand exceeds
// it: a client stops after a refusal), and, once every instance has closed
// and given back its unused units, the server's count is what was admitted.
// Far from the end (100,000), a round trip serves many requests.
func TestLeasesQuotaManyLimiters(t *testing.T) {
	for _, quota := range []int64{1000, 100_000} {
		srv := redistest.Start(t)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		limiters := make([]*Limiter, 8)
		for i := range limiters {
			limiters[i], _ = newLimiter(t, srv.URL(), nil, leases, func(o *Options) { o.Timeout = 10 * time.Second })
			for range 16 {
				wg.Go(func() {
					r := request(func(r *Request) { r.OwnerQuota = quota })
					for {
						d, err := limiters[i].Admit(context.Background(), r)
						if err != nil {
							t.Error(err)
							return
						}
						if !d.Allowed() {
							return
						}
						admitted.Add(1)
					}
				})
			}
		}
		wg.Wait()
		var trips int64
		for _, l := range limiters {
			trips += l.RoundTrips()
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		n := admitted.Load()
		if n > quota || n < quota*99/100 {
			t.Errorf("quota %d: admitted %d, want at most the quota and at least 99%% of it", quota, n)
		}
		if c := ownerCount(t, srv); c != n {
			t.Errorf("quota %d: the server counts %d after the give-backs, want the %d admitted", quota, c, n)
		}
		t.Logf("quota %d: admitted %d in %d round trips", quota, n, trips)
		if quota == 100_000 && trips > quota/10 {
			t.Errorf("quota %d: %d round trips, want far fewer than the requests", quota, trips)
		}
	}
}

// dropProxy forwards connections to addr; while drop is set it swallows
// the server's answers: a call that ran, its answer lost.
type dropProxy struct {
	addr string
	drop atomic.Bool
	// dropped, when set, is called with each answer swallowed.
	dropped func()
}

func startDropProxy(t *testing.T, to string) *dropProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &dropProxy{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := s.Read(buf)
					if n > 0 && !p.drop.Load() {
						c.Write(buf[:n])
					} else if n > 0 && p.dropped != nil {
						p.dropped()
					}
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return p
}

// TestLeaseLostAnswer: a grant whose answer is lost is lost capacity,
// never admitted twice: the instance admits nothing from it, the server
// keeps it counted, and the instance's give-back at Close returns only the
// units it knew of.
func TestLeaseLostAnswer(t *testing.T) {
	srv := redistest.Start(t)
	p := startDropProxy(t, srv.Addr)
	l, logs := newLimiter(t, "redis://"+p.addr, nil, leases, func(o *Options) { o.Timeout = 300 * time.Millisecond })
	r := request(func(r *Request) { r.OwnerQuota = 10_000 })
	if _, err := l.Admit(t.Context(), r); err != nil { // loads the script
		t.Fatal(err)
	}
	before := ownerCount(t, srv) // the first block
	l.leases["k1"].left[ownerQuota] = 0
	p.drop.Store(true)
	if _, err := l.Admit(t.Context(), r); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a grant with its answer lost: %v, want ErrUnavailable", err)
	}
	p.drop.Store(false)
	lost := ownerCount(t, srv) - before
	if lost < 1 {
		t.Fatalf("the lost grant took %d units, want some: the call ran", lost)
	}
	if !strings.Contains(logs.String(), "Redis unavailable") {
		t.Errorf("no WARNING of the lost answer:\n%s", logs)
	}
	admitted := int64(0)
	for range 10 {
		if d, err := l.Admit(t.Context(), r); err == nil && d.Allowed() {
			admitted++
		}
	}
	held := l.leases["k1"].left[ownerQuota]
	if c := ownerCount(t, srv); c != before+lost+admitted+held {
		t.Errorf("server count %d, want %d: the first block, the lost grant, the %d admitted after and the %d in hand", c, before+lost+admitted+held, admitted, held)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := ownerCount(t, srv); after != before+lost+admitted {
		t.Errorf("after Close: %d, want %d: every unit in hand given back, the lost grant kept", after, before+lost+admitted)
	}
}

// TestPausedInstanceIsNoOutage: a call whose deadline passes while the
// instance itself is paused (SIGSTOP: its clock jumps, its timers fire as
// it wakes, the server's answer is never read) is asked again with a fresh
// deadline, not taken for an outage: no ErrUnavailable (the caller would
// admit by its per-instance limits, whose view of the quotas is as old as
// the pause), no WARNING, no failure toward the breaker. The lost call's
// units stay taken on the server: lost capacity, never admitted twice.
// Both the lease's refill and a call per request.
func TestPausedInstanceIsNoOutage(t *testing.T) {
	for _, exact := range []bool{false, true} {
		srv := redistest.Start(t)
		p := startDropProxy(t, srv.Addr)
		clock := testkit.NewFakeClock()
		l, logs := newLimiter(t, "redis://"+p.addr, clock, leases, func(o *Options) { o.Timeout = 200 * time.Millisecond })
		r := request(func(r *Request) { r.OwnerQuota = 10_000 })
		le := l.leaseOf(r.KeyID)
		if exact {
			le.exactTill = clock.Now().Add(time.Hour).UnixNano()
		}
		if _, err := l.Admit(t.Context(), r); err != nil { // loads the script
			t.Fatal(err)
		}
		before := ownerCount(t, srv)
		le.mu.Lock()
		le.left[ownerQuota] = 0
		le.mu.Unlock()
		// The answer arrives while the instance is stopped for 10 s; it
		// wakes past the call's deadline, its answer unread.
		p.dropped = func() {
			if p.drop.Swap(false) {
				clock.Advance(10 * time.Second)
			}
		}
		p.drop.Store(true)
		trips := l.RoundTrips()
		d, err := l.Admit(t.Context(), r)
		if err != nil || !d.Allowed() {
			t.Fatalf("exact %v: a call paused past its deadline: %+v, %v; want asked again and admitted", exact, d, err)
		}
		if n := l.RoundTrips() - trips; n != 2 {
			t.Errorf("exact %v: %d calls, want 2: the paused one and its retry", exact, n)
		}
		if l.inARow.Load() != 0 || strings.Contains(logs.String(), "Redis unavailable") {
			t.Errorf("exact %v: the pause counted as a failure of Redis (%d in a row):\n%s", exact, l.inARow.Load(), logs)
		}
		le.mu.Lock()
		held := le.left[ownerQuota]
		le.mu.Unlock()
		// Exact: the request counted twice. Leased: the lost grant and the
		// one admitted from, less the units in hand.
		if c := ownerCount(t, srv) - before - held; c < 2 {
			t.Errorf("exact %v: the server counted %d past the units in hand, want at least 2: the lost call's units stay taken", exact, c)
		}
	}
}

// TestLeaseExpiry: a lease admits without a call while it lives, Redis
// dead or not; past its life on the instance's clock (a frozen instance
// that wakes) it admits nothing more: the next request asks the server,
// and with the server dead gets ErrUnavailable; back, the unused units of
// the expired block are given back as the next block is taken.
func TestLeaseExpiry(t *testing.T) {
	srv := redistest.Start(t)
	clock := testkit.NewFakeClock()
	l, _ := newLimiter(t, srv.URL(), clock, leases)
	r := request(func(r *Request) { r.OwnerQuota = 100_000 })
	for range 20 { // blocks of 4, 8, 16
		if d, err := l.Admit(t.Context(), r); err != nil || !d.Allowed() {
			t.Fatal(d, err)
		}
	}
	le := l.leases["k1"]
	inHand := le.left[ownerQuota]
	if inHand < 2 {
		t.Fatalf("%d units in hand, want a few", inHand)
	}
	srv.Kill()
	trips := l.RoundTrips()
	if d, err := l.Admit(t.Context(), r); err != nil || !d.Allowed() {
		t.Fatalf("from the lease with Redis dead: %+v, %v; want admitted", d, err)
	}
	if n := l.RoundTrips() - trips; n != 0 {
		t.Errorf("a request from the lease made %d calls", n)
	}
	clock.Advance(quotaBlockTTL - leaseMargin)
	if _, err := l.Admit(t.Context(), r); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("past the lease's life with Redis dead: %v, want ErrUnavailable, not a unit of the expired block", err)
	}
	srv.Restart()
	// The restarted server lost its counts: the floor (the caller's 21
	// admitted) and the units in hand seed it.
	r.OwnerUsed = 21
	clock.Advance(retryInterval)
	if d, err := l.Admit(t.Context(), r); err != nil || !d.Allowed() {
		t.Fatalf("back: %+v, %v", d, err)
	}
	if c, left := ownerCount(t, srv), le.left[ownerQuota]; c != 22+left {
		t.Errorf("server count %d, want %d: the 22 admitted and the %d in hand (the expired block given back, or spent with the lost data)", c, 22+left, left)
	}
}

// TestLeaseCloseGivesBack: Close returns the unused quota units of every
// lease, of every key, in one round trip, and admits nothing after.
func TestLeaseCloseGivesBack(t *testing.T) {
	srv := redistest.Start(t)
	l, _ := newLimiter(t, srv.URL(), nil, leases)
	for _, k := range []string{"k1", "k2", "k3"} {
		r := request(func(r *Request) { r.KeyID, r.OwnerQuota, r.KeyQuota = k, 100_000, 1000 })
		for range 10 {
			if d, err := l.Admit(t.Context(), r); err != nil || !d.Allowed() {
				t.Fatal(d, err)
			}
		}
	}
	if c := ownerCount(t, srv); c <= 30 {
		t.Fatalf("the owner's count %d with blocks in hand, want more than the 30 admitted", c)
	}
	trips := l.RoundTrips()
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := l.RoundTrips() - trips; n != 1 {
		t.Errorf("Close made %d round trips, want 1", n)
	}
	if c := ownerCount(t, srv); c != 30 {
		t.Errorf("after Close the owner's count is %d, want the 30 admitted", c)
	}
	for _, k := range []string{"k1", "k2", "k3"} {
		if c, _ := srv.Client().Get(context.Background(), "test:{acme}:quota:key:"+k+":2026-12").Int64(); c != 10 {
			t.Errorf("after Close key %s counts %d, want 10", k, c)
		}
	}
}

// TestLeaseRateSharesSum: four instances at 100 requests a second each
// against an owner's rate of 50 a second with a burst of 50, for 3 s:
// every share comes out of the one bucket, so at most R·t + B are admitted
// (+1 a instance for the window's edge), and at least 90 % of it.
func TestLeaseRateSharesSum(t *testing.T) {
	srv := redistest.Start(t)
	const d = 3 * time.Second
	rate := ratelimit.Rate{PerSecond: 50, Burst: 50}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		l, _ := newLimiter(t, srv.URL(), nil, leases, func(o *Options) { o.Timeout = 2 * time.Second })
		wg.Go(func() {
			r := request(func(r *Request) { r.OwnerRate = rate })
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for time.Since(start) < d {
				<-tick.C
				if d, err := l.Admit(context.Background(), r); err == nil && d.Allowed() {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	window := time.Since(start)
	n, bound := admitted.Load(), int64(rate.PerSecond*window.Seconds())+int64(rate.Burst)+4
	if n > bound || n < int64(0.9*(rate.PerSecond*d.Seconds()+float64(rate.Burst))) {
		t.Errorf("admitted %d in %v, want at most %d and at least 90%% of %v", n, window, bound, rate.PerSecond*d.Seconds()+float64(rate.Burst))
	}
	t.Logf("admitted %d in %v (bound %d)", n, window.Round(time.Millisecond), bound)
}

// TestLeaseRedisPaused: with the server not answering (CLIENT PAUSE), the
// requests served from a lease do not wait: the refill in the background
// waits its deadline, not them.
func TestLeaseRedisPaused(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = time.Second
	l, _ := newLimiter(t, srv.URL(), nil, leases, func(o *Options) { o.Timeout = timeout })
	r := request(func(r *Request) { r.OwnerQuota = 1e9 })
	le, n := (*lease)(nil), int64(0)
	for i := 0; n < 200; i++ { // blocks of 4, 8, ... until one has 200 in hand
		if d, err := l.Admit(t.Context(), r); err != nil || !d.Allowed() || i > 100_000 {
			t.Fatal(d, err, i)
		}
		le = l.leases["k1"]
		le.mu.Lock()
		n = le.left[ownerQuota]
		le.mu.Unlock()
	}
	if err := srv.Client().Do(context.Background(), "CLIENT", "PAUSE", 3000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range n - 1 {
		if d, err := l.Admit(t.Context(), r); err != nil || !d.Allowed() {
			t.Fatal(d, err)
		}
	}
	if took := time.Since(start); took > timeout/2 {
		t.Errorf("%d requests from the lease took %v with Redis paused, want far less than its deadline %v", n-1, took, timeout)
	} else {
		t.Logf("%d requests from the lease with Redis paused: %v", n-1, took)
	}
}

// BenchmarkLeaseAdmit is one request admitted from a lease, far from its
// limits (a key's and its owner's rates and quotas), against one admitted
// by the per-instance bucket alone, for the cost the lease adds to the
// Gate's hot path; and its round trips per 1,000 requests.
func BenchmarkLeaseAdmit(b *testing.B) {
	srv := redistest.Start(b)
	// Rates far above what one core admits: a share is then only capped
	// by demand.
	rate := ratelimit.Rate{PerSecond: 1e9, Burst: 1e9}
	b.Run("lease", func(b *testing.B) {
		o := Options{URL: srv.URL(), Prefix: "bench:", Leases: true, Timeout: 10 * time.Second}
		l, err := New(o)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close(context.Background())
		r := &Request{KeyID: "k1", Owner: "acme", Month: "2026-12", Expiry: time.Hour,
			KeyRate: rate, OwnerRate: rate, KeyQuota: 1e12, OwnerQuota: 1e12}
		trips := l.RoundTrips()
		b.ReportAllocs()
		for b.Loop() {
			if d, err := l.Admit(context.Background(), r); err != nil || !d.Allowed() {
				b.Fatal(d, err)
			}
		}
		b.ReportMetric(float64(l.RoundTrips()-trips)*1000/float64(b.N), "trips/1000")
	})
	b.Run("instance", func(b *testing.B) {
		rl := ratelimit.NewLimits(1000)
		k := &store.Key{ID: "k1", Owner: "acme", RateLimit: 1e6, Burst: 1e6}
		p := &store.Plan{Owner: "acme", RateLimit: 1e6, Burst: 1e6}
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			if d := rl.Allow(k, p, now); !d.Allowed {
				b.Fatal(d)
			}
		}
	})
}
