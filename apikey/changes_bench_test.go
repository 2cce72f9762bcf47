package apikey

// Benchmarks of issue 12: how fast a change reaches another instance, and
// what following the change feed costs in store calls. BENCHMARKS.md
// ("Revocation in seconds") has the figures and the commands.

import (
	"context"
	"flag"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
)

// revocationTrials is how many revocations each case of
// BenchmarkRevocationSeconds measures.
const revocationTrials = 20

// reportSpread reports the median and the maximum of ds, in milliseconds,
// as name-median-ms and name-max-ms.
func reportSpread(b *testing.B, name string, ds []time.Duration) {
	slices.Sort(ds)
	median := ds[len(ds)/2]
	if len(ds)%2 == 0 {
		median = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(median), name+"-median-ms")
	b.ReportMetric(ms(ds[len(ds)-1]), name+"-max-ms")
}

// BenchmarkRevocationSeconds measures, on the Firestore emulator with the
// real clock, the time from the response to a revocation through instance
// a's API to instance b's first 401 for the key, over revocationTrials
// revocations:
//
//   - busy: b serves a request for the key every 50 ms (so the figure is
//     rounded up to the next request); each revocation comes at a random
//     moment, 0 to 1 s after b's previous refusal;
//   - idle: b has served nothing for 10 s, and its next request comes just
//     after the revocation's response: the figure is that request's time.
//     The trials run a quarter of a second apart, each with an instance b of
//     its own, so that they take 15 s rather than 200.
//
// It reports busy-median-ms, busy-max-ms, idle-median-ms and idle-max-ms.
// Each iteration takes about 40 s: run it with -benchtime 1x, and with a
// -run pattern that matches no test other than '^$' (such as -run NONE),
// which would not start the emulator: CI's smoke run of the benchmarks
// (-run '^$') skips it.
func BenchmarkRevocationSeconds(b *testing.B) {
	if flag.Lookup("test.run").Value.String() == "^$" {
		b.Skip("needs the Firestore emulator, which -run '^$' does not start: run it with -run NONE")
	}
	for b.Loop() {
		reportSpread(b, "busy", busyRevocations(b))
		reportSpread(b, "idle", idleRevocations(b))
	}
}

// revokeThrough revokes k through a's API with key, which is k's.
func revokeThrough(b *testing.B, a *server, key string, k store.Key) {
	if w := a.call("DELETE", "/v1/keys/"+k.ID, key, ""); w.Code != http.StatusNoContent {
		b.Fatalf("revoke = %d %s", w.Code, w.Body)
	}
}

func busyRevocations(b *testing.B) []time.Duration {
	a, inst := twoRealInstances(b)
	var out []time.Duration
	for range revocationTrials {
		key, k := warm(b, a, inst)
		if !busyUntilRefused(b, inst, key, rand.N(time.Second)).IsZero() {
			b.Fatal("refused before the revocation")
		}
		revokeThrough(b, a, key, k)
		revoked := time.Now()
		refused := busyUntilRefused(b, inst, key, time.Minute)
		if refused.IsZero() {
			b.Fatal("not refused within a minute")
		}
		out = append(out, refused.Sub(revoked))
	}
	return out
}

func idleRevocations(b *testing.B) []time.Duration {
	_, project := emulator.Project(b)
	a := realInstance(b, project)
	out := make([]time.Duration, revocationTrials)
	var wg sync.WaitGroup
	for i := range revocationTrials {
		inst := realInstance(b, project)
		key, k := warm(b, a, inst)
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 250 * time.Millisecond)
			time.Sleep(10 * time.Second)
			revokeThrough(b, a, key, k)
			revoked := time.Now()
			if w := inst.do("GET", "/", "", key); w.Code != 401 {
				b.Errorf("the first request after 10 s idle = %d %s, want 401", w.Code, w.Body)
			}
			out[i] = time.Since(revoked)
		})
	}
	wg.Wait()
	return out
}

// BenchmarkChangeFeedStoreCalls counts an instance's store reads over one
// minute of the fake clock (from just after the key cache's reads: less
// than KEY_CACHE_TTL, so the reads of the keys are the feed's doing), with
// 7 keys of one owner cached by a warm-up request each:
//
//   - idle: no request;
//   - trickle: a request every 10 s (each one waits for a sync);
//   - busy: a request every 50 ms, 1,200 a minute, round-robin over the
//     keys;
//   - busy-changes: busy, and another instance (the store) revokes one of
//     the keys every 10 s: 5 revocations.
//
// It reports feed/min (reads of the change feed) and reads/min (the feed,
// and key and plan reads), and requires the promises: no read idle, at
// most one feed read a second.
func BenchmarkChangeFeedStoreCalls(b *testing.B) {
	cases := []struct {
		name    string
		step    time.Duration // between requests; 0: none
		changes bool
	}{
		{"idle", 0, false},
		{"trickle", 10 * time.Second, false},
		{"busy", 50 * time.Millisecond, false},
		{"busy-changes", 50 * time.Millisecond, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				ms := memstore.New()
				counter := &readCounter{Store: ms}
				s := newServer(b, counter)
				keys := make([]string, 7)
				ids := make([]string, len(keys))
				for i := range keys {
					var k store.Key
					keys[i], k = s.mint(b, "acme")
					ids[i] = k.ID
					s.want(b, keys[i], 200, "warm-up")
				}
				s.waitRefreshes()
				feed, reads := counter.feed.Load(), counter.reads()
				start := s.clock.Now()
				next, revoked, served := start, 0, 0
				for now := start; now.Sub(start) < time.Minute; now = s.clock.Now() {
					if c.changes && now.Sub(start) >= time.Duration(revoked+1)*10*time.Second {
						if _, err := ms.Revoke(context.Background(), ids[revoked+1], t0); err != nil {
							b.Fatal(err)
						}
						revoked++
					}
					if c.step > 0 && !now.Before(next) {
						s.do("GET", "/", "", keys[served%len(keys)])
						served++
						s.waitRefreshes() // a read takes a few ms: done before the clock moves on
						next = now.Add(c.step)
					}
					s.clock.Advance(10 * time.Millisecond)
				}
				feed, reads = counter.feed.Load()-feed, counter.reads()-reads
				if c.step == 0 && reads != 0 {
					b.Fatalf("an idle minute made %d store reads, want 0", reads)
				}
				if feed > 60 {
					b.Fatalf("a minute made %d reads of the feed, want at most one a second", feed)
				}
				b.ReportMetric(float64(feed), "feed/min")
				b.ReportMetric(float64(reads), "reads/min")
				b.ReportMetric(float64(served), "requests/min")
			}
		})
	}
}
