package apikey

// Gate.Close: the shutdown of a Gate, under traffic on every store, and
// with a request in flight. The function's own shutdown (Shutdown, SIGTERM)
// is tested in package keygate.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/meter"
	"github.com/keygate/keygate/internal/testkit"
)

// TestCloseUnderTraffic closes a Gate while requests keep arriving, before,
// during and after: every request answered 200 is stored, exactly once,
// and every later one is answered 503 shutting_down with Connection: close.
func TestCloseUnderTraffic(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, s store.Store) {
		srv := newRealServer(t, s, func(c *Config) { c.FlushInterval = 20 * time.Millisecond })
		key, k := srv.mint(t, "acme")
		hs := httptest.NewServer(srv)
		defer hs.Close()

		stop := make(chan struct{})
		tr := testkit.SendTraffic(t, hs.URL, key, stop)
		testkit.WaitFor(t, "200 answers", func() bool { return tr.OK.Load() >= 300 })
		if err := srv.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, "refusals after Close", func() bool { return tr.ShuttingDown.Load() >= 100 })
		close(stop)
		tr.WG.Wait()
		tr.CheckStored(t, s, k.ID, store.MonthOf(time.Now()), srv.logs.String())
	})
}

// TestCloseWaitsForAdmittedRequests: Close waits for the requests the Gate
// let through, at most until its context ends; meanwhile new requests are
// refused. At the deadline, the count of the request still in flight goes
// to the log as usage_unwritten, not to the store: a later Close writes
// nothing, and replaying the log stores it, once.
func TestCloseWaitsForAdmittedRequests(t *testing.T) {
	srv := newServer(t, nil)
	key, k := srv.mint(t, "acme")
	entered, release := make(chan struct{}), make(chan struct{})
	h := srv.Protect("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	answered := make(chan int)
	go func() {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		answered <- w.Code
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Close(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), meter.UnwrittenKey) {
		t.Errorf("Close with a request in flight = %v, want the context's deadline and %s", err, meter.UnwrittenKey)
	}
	w := srv.do("GET", "/", "", key)
	testkit.WantProblem(t, w, http.StatusServiceUnavailable, "shutting_down")
	if w.Header().Get("Connection") != "close" || w.Header().Get("Retry-After") == "" {
		t.Errorf("503 shutting_down headers %v, want Connection: close and Retry-After", w.Header())
	}

	close(release)
	if code := <-answered; code != http.StatusNoContent {
		t.Errorf("the request in flight answered %d, want 204", code)
	}
	if err := srv.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "usage not written: 1 batch logged") {
		t.Fatalf("Close once the request is answered = %v, want the batch logged", err)
	}
	month := store.MonthOf(srv.clock.Now())
	if n, err := srv.store.MonthlyUsage(t.Context(), k.ID, month); err != nil || n != 0 {
		t.Errorf("usage stored = %d, %v; want 0: the count went to the log", n, err)
	}
	batches, err := meter.ReadUnwritten(strings.NewReader(srv.logs.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := meter.Replay(t.Context(), srv.store, batches); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.store.MonthlyUsage(t.Context(), k.ID, month); err != nil || n != 1 {
		t.Errorf("usage stored after replay = %d, %v; want 1: the request in flight, not the one refused", n, err)
	}
}
