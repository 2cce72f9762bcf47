package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"
)

// meterEvents sends meter events with stripe-go. Its retries are off
// (MaxNetworkRetries 0): a send that fails leaves its attempt recorded, and
// the next sweep (or, after a 429, this one) sends it again under the same
// identifier, which is what makes a resend harmless; stripe-go's own
// retries would reuse one random idempotency key, harmless too, but would
// sleep inside the call's deadline, and retry a 429 that the sweep must
// see. Its logger is silenced: the sweep logs what matters, and nothing
// else writes to the function's log.
type meterEvents struct {
	client *stripe.Client
	name   string
}

func newMeterEvents(key, base, eventName string, hc *http.Client) *meterEvents {
	cfg := &stripe.BackendConfig{
		HTTPClient:        hc,
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if base != "" {
		cfg.URL = stripe.String(strings.TrimSuffix(base, "/"))
	}
	return &meterEvents{client: stripe.NewClient(key, stripe.WithBackends(stripe.NewBackendsWithConfig(cfg))), name: eventName}
}

// send sends the meter event of attempt a for customer, and returns nil once
// Stripe has it: a 200, or Stripe's refusal of the identifier as one it
// holds already (the identifier names one value, so the event it holds is
// this one). Otherwise the error is a *refusal (a 4xx but 429), a
// *rateLimited, or another error (5xx, a timeout, the network): Stripe may
// or may not have the event.
func (m *meterEvents) send(ctx context.Context, customer string, value int64, identifier string, ts time.Time) error {
	_, err := m.client.V1BillingMeterEvents.Create(ctx, &stripe.BillingMeterEventCreateParams{
		EventName:  stripe.String(m.name),
		Identifier: stripe.String(identifier),
		Payload:    map[string]string{"stripe_customer_id": customer, "value": strconv.FormatInt(value, 10)},
		Timestamp:  stripe.Int64(ts.Unix()),
	})
	var se *stripe.Error
	if err == nil || !errors.As(err, &se) || se.HTTPStatusCode == 0 {
		return err
	}
	switch code := se.HTTPStatusCode; {
	case code == http.StatusTooManyRequests:
		return &rateLimited{retryAfter: retryAfter(se)}
	case code == http.StatusBadRequest && duplicate(se):
		return nil
	case code >= 400 && code < 500:
		return &refusal{status: code, code: string(se.Code), message: se.Msg, requestID: se.RequestID}
	default:
		return fmt.Errorf("stripe answered %d: %s", code, se.Msg)
	}
}

// duplicate reports whether Stripe refused the event because it holds one
// with its identifier already ("An event already exists with identifier
// ..."): Stripe refuses such a resend with a 400 rather than dropping it.
func duplicate(se *stripe.Error) bool {
	msg := strings.ToLower(se.Msg)
	return se.Code == "duplicate_meter_event" || strings.Contains(msg, "already exists") && strings.Contains(msg, "identifier")
}

// retryAfter is the wait a 429 asks for (Retry-After, in seconds), 0 if it
// names none.
func retryAfter(se *stripe.Error) time.Duration {
	if se.LastResponse == nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(se.LastResponse.Header.Get("Retry-After")))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// refusal is Stripe's 4xx (but 429) to a meter event: the request itself
// is refused (an unknown or deleted customer, a meter not found), and
// sending it again would be refused again.
type refusal struct {
	status        int
	code, message string
	requestID     string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("stripe refused the meter event (%d %s): %s", r.status, r.code, r.message)
}

// account reports whether the refusal is the account's rather than the
// customer's: a key that Stripe does not take (401) or that may not write
// meter events (403) refuses every owner alike.
func (r *refusal) account() bool {
	return r.status == http.StatusUnauthorized || r.status == http.StatusForbidden
}

// rateLimited is Stripe's 429.
type rateLimited struct{ retryAfter time.Duration }

func (r *rateLimited) Error() string {
	return fmt.Sprintf("stripe rate limit (429, retry after %v)", r.retryAfter)
}
