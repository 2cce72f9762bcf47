package apikey

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// BenchmarkConcurrentRevocations: two instances (two Gates, each with a
// Firestore client of its own, the default STORE_TIMEOUT of 2 s) on one
// emulator project; revokeWorkers
// callers, half on each instance, revoke keys of one owner through the API
// for revokeWindow, at rate revocations a second in all (0: back to back),
// while each instance serves the keys the other revoked, to see when it
// refuses them. It reports the revocations per second sustained, the
// failures (any answer but 204), the answers' times, and the time from each
// answer to the other instance's first 401.
//
//	FIRESTORE_EMULATOR_HOST=127.0.0.1:8091 go test -run NONE -bench '^BenchmarkConcurrentRevocations$' -benchtime 1x ./apikey
func BenchmarkConcurrentRevocations(b *testing.B) {
	for _, rate := range []int{50, 200, 0} {
		name := fmt.Sprint("rate=", rate)
		if rate == 0 {
			name = "rate=max"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				concurrentRevocations(b, rate)
			}
		})
	}
}

const (
	revokeWorkers = 16
	revokeWindow  = 5 * time.Second
	// maxRevokeKeys is more keys than the workers can revoke in the window
	// back to back.
	maxRevokeKeys = 4000
)

func concurrentRevocations(b *testing.B, rate int) {
	revokeKeys := maxRevokeKeys
	var tokens chan struct{} // nil: no pacing
	if rate > 0 {
		revokeKeys = rate * int(revokeWindow/time.Second)
		tokens = make(chan struct{})
	}
	a, c := deployedInstances(b)
	instances := [2]*server{a, c}
	manager, _ := a.manager(b, "acme")
	keys := make([]string, revokeKeys)
	ids := make([]string, revokeKeys)
	var wg sync.WaitGroup
	for w := range 8 { // mint and warm in parallel: the emulator is the bottleneck
		wg.Go(func() {
			for i := w; i < revokeKeys; i += 8 {
				var k store.Key
				keys[i], k = a.mint(b, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
				ids[i] = k.ID
				for _, s := range instances {
					warmUp(b, s, keys[i])
				}
			}
		})
	}
	wg.Wait()
	for _, s := range instances {
		warmUp(b, s, manager)
	}
	// Keys alternate between the instances: key i is revoked through
	// instances[i%2], so that the other one learns of it from the feed.
	var next [2]atomic.Int64
	var mu sync.Mutex // answered and refused
	answered := make([]time.Time, revokeKeys)
	refused := make([]time.Time, revokeKeys)
	took := make([]time.Duration, revokeKeys)
	var failures atomic.Int64
	start := time.Now()
	end := start.Add(revokeWindow)
	if tokens != nil {
		go func() { // rate revocations a second, each a token a worker takes
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			for range revokeKeys {
				<-tick.C
				tokens <- struct{}{}
			}
			close(tokens)
		}()
	}
	for w := range revokeWorkers {
		j := w % 2
		wg.Go(func() {
			for time.Now().Before(end) {
				if tokens != nil {
					if _, ok := <-tokens; !ok {
						return
					}
				}
				i := 2*int(next[j].Add(1)-1) + j
				if i >= revokeKeys {
					return
				}
				t0 := time.Now()
				w := instances[j].call("DELETE", "/v1/keys/"+ids[i], manager, "")
				mu.Lock()
				answered[i], took[i] = time.Now(), time.Since(t0)
				mu.Unlock()
				if w.Code != http.StatusNoContent {
					failures.Add(1)
					mu.Lock()
					answered[i] = time.Time{} // not revoked: not looked for
					mu.Unlock()
					if failures.Load() <= 3 {
						b.Logf("revocation = %d %s", w.Code, w.Body)
						logs := instances[j].logs.String()
						b.Logf("log: %s", logs[max(0, strings.LastIndex(logs, `"error"`)):])
					}
				}
			}
		})
	}
	// Meanwhile each instance serves the keys revoked through the other,
	// until it refuses them.
	done := make(chan struct{})
	var pollers sync.WaitGroup
	for j, s := range instances {
		pollers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				var pending []int
				mu.Lock()
				for i := 1 - j; i < revokeKeys; i += 2 {
					if !answered[i].IsZero() && refused[i].IsZero() {
						pending = append(pending, i)
					}
				}
				mu.Unlock()
				for _, i := range pending {
					if w := s.do("GET", "/", "", keys[i]); w.Code == 401 {
						mu.Lock()
						refused[i] = time.Now()
						mu.Unlock()
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start) // until the last answer
	time.Sleep(propagationBound + time.Second)
	close(done)
	pollers.Wait()
	var answers, spread []time.Duration
	for i := range revokeKeys {
		if took[i] != 0 {
			answers = append(answers, took[i])
		}
		if answered[i].IsZero() {
			continue
		}
		if refused[i].IsZero() {
			b.Errorf("key %d still accepted by the other instance %v after its revocation", i, propagationBound+time.Second)
			continue
		}
		spread = append(spread, max(0, refused[i].Sub(answered[i])))
	}
	slices.Sort(answers)
	slices.Sort(spread)
	b.ReportMetric(float64(len(answers)-int(failures.Load()))/elapsed.Seconds(), "revokes/s")
	b.ReportMetric(float64(failures.Load()), "failures")
	b.ReportMetric(ms(answers[len(answers)/2]), "answer-p50-ms")
	b.ReportMetric(ms(answers[len(answers)-1]), "answer-max-ms")
	if len(spread) > 0 {
		b.ReportMetric(ms(spread[len(spread)/2]), "to401-p50-ms")
		b.ReportMetric(ms(spread[len(spread)-1]), "to401-max-ms")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
