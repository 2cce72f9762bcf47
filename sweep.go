package keygate

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/problem"
)

// sweepTimeout bounds one Sweep: under Cloud Scheduler's default attempt
// deadline of 3 minutes, so that a run that hangs on a dependency ends and
// the next one goes on.
const sweepTimeout = 2 * time.Minute

// ServeSweep is the Sweep entry point: the time-driven work of events
// (apikey.Gate.Sweep) that Cloud Scheduler asks for, every 5 minutes, with
// a POST. It is deployed private (no unauthenticated invocations): the
// platform lets in only the scheduler's service account. It answers the
// run's summary as JSON: 200, or 500 when a step failed, so that the
// scheduler records the failure (the next run goes on where it stopped).
func (a api) ServeSweep(w http.ResponseWriter, r *http.Request) {
	f, err := a.function()
	if err != nil {
		a.ServeHTTP(w, r) // the 500 of a bad configuration
		return
	}
	f.Sweep(w, r)
}

// Sweep serves one sweep of the function's Gate.
func (f *Function) Sweep(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		problem.Write(w, problem.New(http.StatusMethodNotAllowed, apikey.CodeMethodNotAllowed, "Sweep takes POST."))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), sweepTimeout)
	defer cancel()
	sum, err := f.gate.Sweep(ctx)
	status := http.StatusOK
	if err != nil {
		status = http.StatusInternalServerError
		f.log.Error("sweep failed: the next run goes on", slog.String("error", err.Error()))
	}
	problem.WriteJSON(w, status, sum)
}
