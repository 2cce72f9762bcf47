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

// sweepHandler is the Sweep entry point: the time-driven work of events
// and of the usage export to Stripe (apikey.Gate.Sweep) that Cloud
// Scheduler asks for, every 5 minutes, with a POST, on the Gate that gate
// builds. It is deployed private (no
// unauthenticated invocations): the platform lets in only the scheduler's
// service account. It answers the run's summary as JSON: 200, or 500 when
// a step failed, so that the scheduler records the failure (the next run
// goes on where it stopped).
func sweepHandler(gate func() (*apikey.Gate, error), log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g, err := gate()
		if err != nil {
			log.Error("keygate is misconfigured", slog.String("error", err.Error()))
			problem.Write(w, problem.New(http.StatusInternalServerError, apikey.CodeMisconfigured, "The service is misconfigured; its logs say how."))
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			problem.Write(w, problem.New(http.StatusMethodNotAllowed, apikey.CodeMethodNotAllowed, "Sweep takes POST."))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), sweepTimeout)
		defer cancel()
		sum, err := g.Sweep(ctx)
		status := http.StatusOK
		if err != nil {
			status = http.StatusInternalServerError
			log.Error("sweep failed: the next run goes on", slog.String("error", err.Error()))
		}
		problem.WriteJSON(w, status, sum)
	}
}
