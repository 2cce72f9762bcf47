package apikey

// Gate.Close: the shutdown of a Gate, under traffic on every store, and
// with a request in flight. The function's own shutdown (Shutdown, SIGTERM)
// is tested in package keygate.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
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
// let through, at most until its context ends (then it says so); meanwhile
// new requests are refused. Once they are answered, Close (again) writes
// their counts.
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
	if err := srv.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a request in flight = %v, want the context's deadline", err)
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
	if err := srv.Close(context.Background()); err != nil {
		t.Fatalf("Close once the request is answered = %v", err)
	}
	n, err := srv.store.MonthlyUsage(t.Context(), k.ID, store.MonthOf(srv.clock.Now()))
	if err != nil || n != 1 {
		t.Errorf("usage stored = %d, %v; want 1: the request in flight, not the one refused", n, err)
	}
}
