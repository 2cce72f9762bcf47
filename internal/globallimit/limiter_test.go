package globallimit

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/limit"
	"github.com/keygate/keygate/internal/ratelimit"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testkit"
)

// newLimiter returns a limiter of srv's URL (or url) on clock, its logs in
// the returned buffer.
func newLimiter(t *testing.T, url string, clock *testkit.FakeClock, change ...func(*Options)) (*Limiter, *testkit.SyncBuffer) {
	t.Helper()
	log, buf := testkit.Logger()
	o := Options{URL: url, Prefix: "test:", Log: log}
	for _, f := range change {
		f(&o)
	}
	if clock != nil {
		o.Now = clock.Now
	}
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l, buf
}

func request(change func(*Request)) *Request {
	r := &Request{KeyID: "k1", Owner: "acme", Month: "2026-12", Expiry: time.Hour}
	change(r)
	return r
}

func TestRateIsGCRA(t *testing.T) {
	srv := redistest.Start(t)
	l, _ := newLimiter(t, srv.URL(), nil)
	r := request(func(r *Request) { r.OwnerRate = ratelimit.Rate{PerSecond: 2, Burst: 3} })
	for i := range 3 {
		d, err := l.Admit(t.Context(), r)
		if err != nil || !d.Allowed() {
			t.Fatalf("request %d of a full burst of 3: %+v, %v", i+1, d, err)
		}
		if d.Rate.Which != limit.Owner || d.Rate.Limit != 3 || d.Rate.Remaining != int64(2-i) || d.Rate.Reset < 1 || d.Rate.Reset > 2 {
			t.Errorf("request %d: rate %+v, want owner's, limit 3, %d remaining, reset 1 or 2 s", i+1, d.Rate, 2-i)
		}
	}
	d, err := l.Admit(t.Context(), r)
	if err != nil || d.Allowed() || d.Rate.Allowed || d.Rate.Which != limit.Owner {
		t.Fatalf("4th request at once: %+v, %v; want refused by the owner's rate", d, err)
	}
	if d.Rate.RetryAfter <= 0 || d.Rate.RetryAfter > 500*time.Millisecond {
		t.Errorf("Retry-After %v, want at most one emission interval (500ms)", d.Rate.RetryAfter)
	}
	time.Sleep(d.Rate.RetryAfter + 10*time.Millisecond)
	if d, err := l.Admit(t.Context(), r); err != nil || !d.Allowed() {
		t.Errorf("after Retry-After: %+v, %v; want allowed", d, err)
	}
}

// TestKeyRateFirst: a key over its own rate is refused without taking from
// its owner's, and the headers show the tighter limit.
func TestKeyRateFirst(t *testing.T) {
	srv := redistest.Start(t)
	l, _ := newLimiter(t, srv.URL(), nil)
	r := request(func(r *Request) {
		r.KeyRate = ratelimit.Rate{PerSecond: 0.01, Burst: 1}
		r.OwnerRate = ratelimit.Rate{PerSecond: 0.01, Burst: 2}
	})
	if d, _ := l.Admit(t.Context(), r); !d.Allowed() || d.Rate.Which != limit.Key || d.Rate.Remaining != 0 {
		t.Fatalf("first: %+v, want allowed, the key's limit with 0 left", d)
	}
	for range 3 {
		if d, _ := l.Admit(t.Context(), r); d.Allowed() || d.Rate.Which != limit.Key {
			t.Fatalf("over the key's rate: %+v, want refused by the key", d)
		}
	}
	other := request(func(o *Request) { o.KeyID = "k2"; o.OwnerRate = r.OwnerRate })
	if d, _ := l.Admit(t.Context(), other); !d.Allowed() {
		t.Errorf("the owner's other key: %+v, want allowed: the refused requests took none of the owner's burst", d)
	}
}

// TestBuckets: a named bucket (the Gate's management budgets) is the
// owner's, shared by its keys, apart from the data plane's and from other
// buckets: it ignores the key's rate and the quotas, and draining it takes
// nothing from the owner's data-plane rate nor another bucket.
func TestBuckets(t *testing.T) {
	srv := redistest.Start(t)
	l, _ := newLimiter(t, srv.URL(), nil)
	manage := func(key, bucket string) *Request {
		return request(func(r *Request) {
			r.KeyID, r.Bucket = key, bucket
			r.OwnerRate = ratelimit.Rate{PerSecond: 0.01, Burst: 2}
			r.KeyRate = ratelimit.Rate{PerSecond: 0.01, Burst: 1} // ignored
			r.OwnerQuota = 1                                      // ignored
		})
	}
	for i, key := range []string{"k1", "k2"} { // two keys, one budget
		if d, err := l.Admit(t.Context(), manage(key, "manage")); err != nil || !d.Allowed() || d.Rate.Which != limit.Owner {
			t.Fatalf("management request %d: %+v, %v; want allowed by the owner's bucket", i+1, d, err)
		}
	}
	if d, _ := l.Admit(t.Context(), manage("k3", "manage")); d.Allowed() {
		t.Errorf("a third key's request past the bucket's burst of 2: %+v, want refused", d)
	}
	if d, _ := l.Admit(t.Context(), manage("k1", "manage-mints")); !d.Allowed() {
		t.Errorf("another bucket of the owner: %+v, want allowed", d)
	}
	data := request(func(r *Request) { r.OwnerRate = ratelimit.Rate{PerSecond: 0.01, Burst: 1} })
	if d, _ := l.Admit(t.Context(), data); !d.Allowed() {
		t.Errorf("the owner's data plane: %+v, want allowed: the buckets are apart", d)
	}
	other := manage("k1", "manage")
	other.Owner = "globex"
	if d, _ := l.Admit(t.Context(), other); !d.Allowed() {
		t.Errorf("another owner's bucket: %+v, want allowed", d)
	}
}

// TestQuotaExactUnderConcurrency: 4 limiters (instances) sending 50
// concurrent requests each at a quota of 50 admit exactly 50. (A timeout
// long enough for 200 goroutines on a shared, race-instrumented machine:
// the test is of exactness, not speed.)
func TestQuotaExactUnderConcurrency(t *testing.T) {
	srv := redistest.Start(t)
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		l, _ := newLimiter(t, srv.URL(), nil, func(o *Options) { o.Timeout = 10 * time.Second })
		for range 50 {
			wg.Go(func() {
				d, err := l.Admit(context.Background(), request(func(r *Request) { r.OwnerQuota = 50 }))
				switch {
				case err != nil:
					t.Error(err)
				case d.Allowed():
					admitted.Add(1)
				case d.Quota.Which == limit.Owner && d.Quota.Remaining == 0 && d.Quota.Limit == 50:
					refused.Add(1)
				default:
					t.Errorf("refusal %+v, want the owner's quota, 50 of 50 used", d)
				}
			})
		}
	}
	wg.Wait()
	if admitted.Load() != 50 || refused.Load() != 150 {
		t.Errorf("%d admitted, %d refused; want 50 and 150", admitted.Load(), refused.Load())
	}
	if n := srv.Client().Get(t.Context(), "test:{acme}:quota:owner:2026-12").Val(); n != "50" {
		t.Errorf("owner's count on the server = %q, want 50", n)
	}
}

// TestQuotaSeededFromFloor: a missing count starts at the caller's floor
// (the usage record), and a lower one is raised to it; a higher one stays.
func TestQuotaSeededFromFloor(t *testing.T) {
	srv := redistest.Start(t)
	l, _ := newLimiter(t, srv.URL(), nil)
	admit := func(floor int64) bool {
		d, err := l.Admit(t.Context(), request(func(r *Request) { r.KeyQuota, r.KeyUsed = 10, floor }))
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed() && (d.Quota.Which != limit.Key || d.Quota.Limit != 10) {
			t.Fatalf("refusal %+v, want the key's quota of 10", d)
		}
		return d.Allowed()
	}
	if !admit(8) || !admit(0) || admit(0) {
		t.Errorf("seeded at 8 of 10: want 2 admitted, then refused")
	}
	// A flushed server is seeded again, from the record.
	srv.Client().FlushAll(t.Context())
	if !admit(9) || admit(9) {
		t.Errorf("after FLUSHALL, seeded at 9 of 10: want 1 admitted, then refused")
	}
	// Requests admitted elsewhere without the server raise the floor.
	srv.Client().FlushAll(t.Context())
	admit(0)
	admit(0) // count 2
	if admit(10) {
		t.Errorf("count 2, floor 10 of 10: admitted, want refused")
	}
	ttl := srv.Client().TTL(t.Context(), "test:{acme}:quota:key:k1:2026-12").Val()
	if ttl <= 0 || ttl > time.Hour {
		t.Errorf("count's TTL = %v, want the request's expiry (1h)", ttl)
	}
}

// TestUnlimitedTakesNothing: quotas refuse before anything is taken, so a
// quota refusal costs no rate token.
func TestQuotaRefusalTakesNoRate(t *testing.T) {
	srv := redistest.Start(t)
	l, _ := newLimiter(t, srv.URL(), nil)
	r := request(func(r *Request) {
		r.OwnerRate = ratelimit.Rate{PerSecond: 0.01, Burst: 1}
		r.KeyQuota, r.KeyUsed = 5, 5
	})
	if d, _ := l.Admit(t.Context(), r); d.Allowed() || d.Quota.Which != limit.Key || !d.Rate.Allowed {
		t.Fatalf("%+v, want refused by the key's quota, the rate passing", d)
	}
	r.KeyQuota = 0
	if d, _ := l.Admit(t.Context(), r); !d.Allowed() {
		t.Errorf("%+v: the quota refusal took the owner's only token", d)
	}
}

// TestServerDown: a killed server makes Admit fail fast (ErrUnavailable),
// the server is probed once a retry interval, a WARNING is logged at most
// every 10 s, and the limiter recovers by itself when the server is back.
func TestServerDown(t *testing.T) {
	srv := redistest.Start(t)
	clock := testkit.NewFakeClock()
	l, logs := newLimiter(t, srv.URL(), clock)
	r := request(func(r *Request) { r.OwnerQuota = 1000 })
	if _, err := l.Admit(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	warnings := func() int { return strings.Count(logs.String(), `"severity":"WARNING"`) }
	for i := range 100 { // 100 requests over 20 s of the fake clock
		start := time.Now()
		_, err := l.Admit(t.Context(), r)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("request %d with the server down: %v, want ErrUnavailable", i, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("request %d took %v with the server down", i, d)
		}
		clock.Advance(200 * time.Millisecond)
	}
	if n := warnings(); n < 2 || n > 3 {
		t.Errorf("%d WARNINGs over 20 s of failures, want 2 or 3 (one per 10 s):\n%s", n, logs)
	}
	srv.Restart()
	// A request every 100 ms: global again within 2 s. (go-redis's pool,
	// after as many failed dials as it has connections, dials again once a
	// second; the limiter probes once a retry interval.)
	back := time.Now()
	for {
		clock.Advance(100 * time.Millisecond)
		if _, err := l.Admit(t.Context(), r); err == nil {
			break
		}
		if time.Since(back) > 2*time.Second {
			t.Fatalf("not back 2 s after the server restarted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("global again %v after the restart", time.Since(back).Round(time.Millisecond))
	if !strings.Contains(logs.String(), "Redis answers again") {
		t.Errorf("no log of the recovery:\n%s", logs)
	}
}

// TestServerHangs: a server that accepts connections and never answers
// costs each of the first openAfter requests one timeout (one slow answer
// alone does not give up on the server), and the requests after them
// nothing, until the next probe, which one request makes.
func TestServerHangs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	clock := testkit.NewFakeClock()
	l, _ := newLimiter(t, "redis://"+ln.Addr().String(), clock)
	r := request(func(r *Request) { r.OwnerQuota = 10 })
	for i := range openAfter {
		start := time.Now()
		if _, err := l.Admit(t.Context(), r); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("hanging server: %v, want ErrUnavailable", err)
		}
		// Bounded, not hanging: 2 s is 40 timeouts, room for a loaded machine.
		if d := time.Since(start); d < DefaultTimeout || d > 2*time.Second {
			t.Errorf("request %d took %v, want about the timeout %v", i+1, d, DefaultTimeout)
		}
	}
	start := time.Now()
	for range 100 {
		l.Admit(t.Context(), r)
	}
	// Had a quarter of them waited a timeout each, 25 timeouts: a margin
	// of over a second for a loaded machine, on what takes microseconds.
	if d := time.Since(start); d > 25*DefaultTimeout {
		t.Errorf("100 requests inside the retry interval took %v, want no waiting", d)
	}
	clock.Advance(retryInterval)
	start = time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { l.Admit(context.Background(), r) })
	}
	wg.Wait()
	// One probe in turn each would take 20 timeouts.
	if d := time.Since(start); d > 10*DefaultTimeout {
		t.Errorf("20 concurrent requests at the probe took %v: more than one probe?", d)
	}
}

func TestParseURLHidesPassword(t *testing.T) {
	for _, u := range []string{"http://:s3cret@host:6379", "redis://:s3cret@host:6379/x", "redis://:s3cret@[::1"} {
		_, err := ParseURL(u)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseURL(%q) = %v, want an error without the password", u, err)
		}
	}
	for _, u := range []string{"redis://10.0.0.3:6379", "rediss://:s3cret@10.0.0.3:6378/0", "redis://default:pw@localhost"} {
		if _, err := ParseURL(u); err != nil {
			t.Errorf("ParseURL(%q): %v", u, err)
		}
	}
}

// TestClosedIsNotAnOutage: requests after Close (a Gate shutting down) get
// ErrUnavailable, and no WARNING of Redis.
func TestClosedIsNotAnOutage(t *testing.T) {
	srv := redistest.Start(t)
	l, logs := newLimiter(t, srv.URL(), nil)
	l.Close(context.Background())
	if _, err := l.Admit(t.Context(), request(func(r *Request) { r.OwnerQuota = 5 })); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after Close: %v, want ErrUnavailable", err)
	}
	if strings.Contains(logs.String(), "WARNING") {
		t.Errorf("a closed limiter logged a WARNING:\n%s", logs)
	}
}

// TestTLSAndAuth: a rediss:// server with a certificate authority of its
// own (Memorystore's in-transit encryption) and a password (AUTH) admits
// with the authority in Options.CA and the password in the URL; without
// the authority, or with a wrong password, the calls fail, and the error
// never shows the password.
func TestTLSAndAuth(t *testing.T) {
	srv, ca := redistest.StartTLS(t, "s3cret")
	r := request(func(r *Request) { r.OwnerQuota = 5 })
	l, _ := newLimiter(t, srv.URL(), nil, func(o *Options) { o.CA = ca; o.Timeout = 5 * time.Second })
	if d, err := l.Admit(t.Context(), r); err != nil || !d.Allowed() {
		t.Fatalf("TLS with the authority and AUTH: %+v, %v", d, err)
	}
	for name, o := range map[string]func(*Options){
		"system roots": func(o *Options) { o.Timeout = 5 * time.Second },
		"wrong password": func(o *Options) {
			o.CA, o.URL, o.Timeout = ca, strings.Replace(srv.URL(), "s3cret", "wrong", 1), 5*time.Second
		},
	} {
		l, logs := newLimiter(t, srv.URL(), nil, o)
		_, err := l.Admit(t.Context(), r)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", name, err)
		}
		if strings.Contains(logs.String()+err.Error(), "s3cret") {
			t.Errorf("%s: the password shows: %v\n%s", name, err, logs)
		}
		t.Logf("%s: %v", name, err)
	}
	if _, err := New(Options{URL: "redis://" + srv.Addr, CA: ca}); err == nil {
		t.Errorf("a certificate authority with redis://: no error")
	}
	if _, err := New(Options{URL: srv.URL(), CA: "not a certificate"}); err == nil {
		t.Errorf("a CA that is not PEM: no error")
	}
}
