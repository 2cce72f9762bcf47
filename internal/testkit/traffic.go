package testkit

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// Traffic sends GET / with key to url from 8 goroutines until stop is
// closed or the server stops answering, and tallies the answers.
type Traffic struct {
	OK, ShuttingDown, Other, Failed atomic.Int64
	WG                              sync.WaitGroup
}

// SendTraffic starts the traffic; close stop to end it, then wait on WG.
func SendTraffic(t *testing.T, url, key string, stop <-chan struct{}) *Traffic {
	tr := &Traffic{}
	client := &http.Client{Timeout: 10 * time.Second}
	for range 8 {
		tr.WG.Go(func() {
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
					if tr.Failed.Add(1) > 1000 {
						return // the server is gone
					}
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					tr.OK.Add(1)
				case resp.StatusCode == 503 && strings.Contains(string(body), `"shutting_down"`):
					if !resp.Close {
						t.Error("503 shutting_down without Connection: close")
					}
					tr.ShuttingDown.Add(1)
				default:
					tr.Other.Add(1)
					t.Errorf("status %d %s", resp.StatusCode, body)
				}
			}
		})
	}
	return tr
}

// CheckStored checks that s holds exactly the key's requests that were
// answered 200 in month, and logs the figures; more is shown on failure.
func (tr *Traffic) CheckStored(t *testing.T, s store.UsageStore, id string, month store.Month, more string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stored, err := s.MonthlyUsage(ctx, id, month)
	if err != nil {
		t.Fatal(err)
	}
	if stored != tr.OK.Load() {
		t.Errorf("stored %d, answered 200 %d (then %d shutting_down)\n%s", stored, tr.OK.Load(), tr.ShuttingDown.Load(), more)
	}
	t.Logf("answered 200: %d, stored: %d, refused while shutting down: %d", tr.OK.Load(), stored, tr.ShuttingDown.Load())
}

// WaitFor waits until cond holds, failing the test after a minute.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
