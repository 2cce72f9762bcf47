package apikey

import (
	"net/http"
	"testing"

	"github.com/keygate/keygate/internal/testkit"
)

// BenchmarkSecretScanningThousand: one signed report of
// maxReportMatches well-formed tokens, 20 of them live keys minted
// for it (outside the timer), the rest unknown: the time to answer it, the
// batched reads it makes (reads/op) and its writes (a leak recorded and a
// revocation per live key), on memory and on the emulator.
//
//	go test ./apikey -run NONE -bench SecretScanningThousand -benchtime 10x
func BenchmarkSecretScanningThousand(b *testing.B) {
	for _, impl := range testkit.Stores {
		b.Run(impl.Name, func(b *testing.B) {
			s := newScanned(b, impl.New(b), slowStore)
			labelsOf(b, s.signed(b, []byte(`[]`))) // GitHub's keys fetched
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				tokens, _ := thousandTokens(b, s.server, 20)
				body := reportOf(leakAt, tokens...)
				sig := s.gh.Sign(b, "k1", body)
				b.StartTimer()
				if w := s.report(body, "k1", sig); w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(s.calls.getMany.Load())/float64(b.N), "reads/op")
			b.ReportMetric(float64(s.calls.writes())/float64(b.N), "writes/op")
		})
	}
}
