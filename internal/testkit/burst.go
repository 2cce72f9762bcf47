package testkit

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// Burst sends n GET requests with key to each of urls at once, over
// client, and counts the 200s and the 429s; any other answer, or no
// answer, fails t. For the tests that a limit admits exactly what it
// allows under concurrency.
func Burst(t *testing.T, client *http.Client, urls []string, key string, n int) (admitted, refused int64) {
	t.Helper()
	var ok, tooMany atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, url := range urls {
		for range n {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("X-API-Key", key)
				<-start
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err) // not Fatal: this is not the test's goroutine
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					tooMany.Add(1)
				default:
					t.Errorf("status %d %s", resp.StatusCode, body)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	return ok.Load(), tooMany.Load()
}
