package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// meterEvents sends meter events: one form POST to Stripe's
// /v1/billing/meter_events, written here rather than through stripe-go,
// whose one package holds every Stripe resource and adds 8.2 MB (18 %) to
// every binary that links apikey, billed or not, for this one request
// (docs/reference.md). stripe-mock checks each request the tests send
// against Stripe's own API description. There are no retries in the call:
// a send that fails leaves its attempt recorded, and the next sweep (or,
// after a 429, this one) sends it again under the same identifier, which
// is what makes a resend harmless.
type meterEvents struct {
	url, key, name string
	hc             *http.Client
}

// apiBase is Stripe's API; apiVersion the version keygate's requests and
// their answers are written for (stripe-go v82's).
const (
	apiBase    = "https://api.stripe.com"
	apiVersion = "2025-08-27.basil"
	// maxAnswer bounds what is read of Stripe's answer.
	maxAnswer = 64 << 10
)

func newMeterEvents(key, base, eventName string, hc *http.Client) *meterEvents {
	if base == "" {
		base = apiBase
	}
	return &meterEvents{url: strings.TrimSuffix(base, "/") + "/v1/billing/meter_events", key: key, name: eventName, hc: hc}
}

// send sends the meter event of attempt a for customer, and returns nil once
// Stripe has it: a 200, or Stripe's refusal of the identifier as one it
// holds already (the identifier names one value, so the event it holds is
// this one). Otherwise the error is a *refusal (a 4xx but 429), a
// *rateLimited, or another error (5xx, a timeout, the network): Stripe may
// or may not have the event.
func (m *meterEvents) send(ctx context.Context, customer string, value int64, identifier string, ts time.Time) error {
	form := url.Values{
		"event_name":                  {m.name},
		"identifier":                  {identifier},
		"payload[stripe_customer_id]": {customer},
		"payload[value]":              {strconv.FormatInt(value, 10)},
		"timestamp":                   {strconv.FormatInt(ts.Unix(), 10)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+m.key)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Stripe-Version", apiVersion)
	req.Header.Set("User-Agent", "keygate")
	resp, err := m.hc.Do(req)
	if err != nil {
		return fmt.Errorf("stripe: %w", scrubURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil // the event is Stripe's, whatever of the answer was read
	}
	if err != nil {
		return fmt.Errorf("stripe answered %d, then: %w", code, err)
	}
	var envelope struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &envelope) // a body that is not Stripe's leaves them empty
	se := envelope.Error
	switch {
	case code == http.StatusTooManyRequests:
		return &rateLimited{retryAfter: retryAfter(resp.Header)}
	case code == http.StatusBadRequest && duplicate(se.Code, se.Message):
		return nil
	case code >= 400 && code < 500:
		return &refusal{status: code, code: se.Code, message: se.Message, requestID: resp.Header.Get("Request-Id")}
	default:
		return fmt.Errorf("stripe answered %d: %s", code, se.Message)
	}
}

// scrubURL drops the URL from a transport error: it names only Stripe's
// API (or STRIPE_API_BASE), never the key, but the error says enough
// without it.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// duplicate reports whether Stripe refused the event because it holds one
// with its identifier already ("An event already exists with identifier
// ..."): Stripe refuses such a resend with a 400 rather than dropping it.
func duplicate(code, message string) bool {
	msg := strings.ToLower(message)
	return code == "duplicate_meter_event" || strings.Contains(msg, "already exists") && strings.Contains(msg, "identifier")
}

// retryAfter is the wait a 429 asks for (Retry-After, in seconds), 0 if it
// names none.
func retryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After")))
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
