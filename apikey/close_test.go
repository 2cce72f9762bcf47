package apikey

// Gate.Close: the shutdown of a Gate, under traffic on every store, and
// with a request in flight. The function's own shutdown (Shutdown, SIGTERM)
// is tested in package keygate.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

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

// checkStored checks that s holds exactly the key's requests that were
// answered 200 in month, and logs the figures; more is shown on failure.
func (tr *traffic) checkStored(t *testing.T, s store.UsageStore, id string, month store.Month, more string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stored, err := s.MonthlyUsage(ctx, id, month)
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
		tr := sendTraffic(t, hs.URL, key, stop)
		waitFor(t, "200 answers", func() bool { return tr.ok.Load() >= 300 })
		if err := srv.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "refusals after Close", func() bool { return tr.shuttingDown.Load() >= 100 })
		close(stop)
		tr.wg.Wait()
		tr.checkStored(t, s, k.ID, store.MonthOf(time.Now()), srv.logs.String())
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
