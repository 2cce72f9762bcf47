package stripetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Event is a meter event as the stand-in received it.
type Event struct {
	Name       string
	Customer   string
	Value      int64
	Identifier string
	Timestamp  time.Time
}

// Day is the event's UTC day, YYYY-MM-DD.
func (e Event) Day() string { return e.Timestamp.UTC().Format(time.DateOnly) }

// Fault is what the stand-in does with one request instead of answering
// it as Stripe would.
type Fault int

const (
	None        Fault = iota
	LoseAnswer        // keeps the event, answers 502: the answer lost on the way
	CutAnswer         // keeps the event, closes the connection without an answer
	ServerError       // keeps nothing, answers 500
	RateLimit         // keeps nothing, answers 429 with Retry-After: 1
	Hang              // keeps nothing, answers nothing until the client gives up
)

// StandIn is a recording Stripe for meter events: it keeps each event
// under its identifier the first time, refuses an identifier it holds with
// Stripe's 400 ("An event already exists with identifier ..."), refuses
// unknown customers with 400 resource_missing, and plays the faults its
// Fault function asks for.
type StandIn struct {
	URL string

	mu       sync.Mutex
	received []Event
	kept     map[string]Event // by identifier
	unknown  map[string]bool  // customers that do not exist
	fault    func(n int, e Event) Fault
	calls    int
}

// NewStandIn starts a stand-in for t, closed when t ends.
func NewStandIn(t testing.TB) *StandIn {
	s := &StandIn{kept: map[string]Event{}, unknown: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	s.URL = srv.URL
	return s
}

// SetFault makes f decide each request's fault: n counts the requests from
// 1.
func (s *StandIn) SetFault(f func(n int, e Event) Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Unknown makes customer one that does not exist.
func (s *StandIn) Unknown(customer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unknown[customer] = true
}

// Received is every request, in order, resends and refused ones included.
func (s *StandIn) Received() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.received...)
}

// Kept is the events kept, one per identifier.
func (s *StandIn) Kept() map[string]Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Event, len(s.kept))
	for id, e := range s.kept {
		out[id] = e
	}
	return out
}

// Totals sums the kept events' values per customer and UTC day: what a
// meter would bill.
func (s *StandIn) Totals() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, e := range s.Kept() {
		if out[e.Customer] == nil {
			out[e.Customer] = map[string]int64{}
		}
		out[e.Customer][e.Day()] += e.Value
	}
	return out
}

func (s *StandIn) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/billing/meter_events" {
		stripeError(w, http.StatusNotFound, "invalid_request_error", "", "Unrecognized request URL.")
		return
	}
	if err := r.ParseForm(); err != nil {
		stripeError(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
		return
	}
	ts, _ := strconv.ParseInt(r.PostForm.Get("timestamp"), 10, 64)
	value, err := strconv.ParseInt(r.PostForm.Get("payload[value]"), 10, 64)
	e := Event{Name: r.PostForm.Get("event_name"), Customer: r.PostForm.Get("payload[stripe_customer_id]"), Value: value,
		Identifier: r.PostForm.Get("identifier"), Timestamp: time.Unix(ts, 0).UTC()}
	if err != nil || e.Name == "" || e.Customer == "" || e.Identifier == "" || ts == 0 {
		stripeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_missing", "Missing a parameter.")
		return
	}
	s.mu.Lock()
	s.calls++
	s.received = append(s.received, e)
	fault := None
	if s.fault != nil {
		fault = s.fault(s.calls, e)
	}
	_, seen := s.kept[e.Identifier]
	unknown := s.unknown[e.Customer]
	if !seen && !unknown && (fault == None || fault == LoseAnswer || fault == CutAnswer) {
		s.kept[e.Identifier] = e
	}
	s.mu.Unlock()
	switch {
	case fault == Hang:
		<-r.Context().Done()
	case fault == RateLimit:
		w.Header().Set("Retry-After", "1")
		stripeError(w, http.StatusTooManyRequests, "invalid_request_error", "rate_limit", "Too many requests.")
	case fault == ServerError:
		stripeError(w, http.StatusInternalServerError, "api_error", "", "An unknown error occurred.")
	case fault == LoseAnswer:
		w.WriteHeader(http.StatusBadGateway)
	case fault == CutAnswer:
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	case unknown:
		stripeError(w, http.StatusBadRequest, "invalid_request_error", "resource_missing", fmt.Sprintf("No such customer: '%s'", e.Customer))
	case seen:
		stripeError(w, http.StatusBadRequest, "invalid_request_error", "", fmt.Sprintf("An event already exists with identifier %s.", e.Identifier))
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"object": "billing.meter_event", "event_name": e.Name, "identifier": e.Identifier,
			"livemode": false, "created": time.Now().Unix(), "timestamp": ts,
			"payload": map[string]string{"stripe_customer_id": e.Customer, "value": strconv.FormatInt(value, 10)}})
	}
}

// stripeError answers Stripe's error object.
func stripeError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"type": typ, "code": code, "message": msg}})
}
