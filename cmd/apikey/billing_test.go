package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/stripetest"
)

// TestSweepExportsToStripe: with STRIPE_SECRET_KEY, apikey sweep exports a
// linked owner's usage as one meter event for the day, and a second sweep
// sends nothing; without EVENTS_TOPIC or a key there is nothing to sweep.
func TestSweepExportsToStripe(t *testing.T) {
	h := newHarness(t)
	if r := h.run("sweep"); r.code == 0 || !strings.Contains(r.stderr, "STRIPE_SECRET_KEY") {
		t.Errorf("sweep with neither set: exit %d, %s; want a failure naming STRIPE_SECRET_KEY", r.code, r.stderr)
	}
	s := stripetest.NewStandIn(t)
	h.env["STRIPE_SECRET_KEY"], h.env["STRIPE_API_BASE"] = "sk_test_cliS3CRET", s.URL
	st := firestorestore.New(firestorestore.Config{Project: h.env["GOOGLE_CLOUD_PROJECT"]})
	defer st.Close()
	ctx := context.Background()
	if err := st.SetPlan(ctx, store.Plan{Owner: "acme", StripeCustomer: "cus_Acme1"}); err != nil {
		t.Fatal(err)
	}
	day := store.DayOf(start)
	if err := st.AddUsage(ctx, "i", 1, []store.UsageCount{{KeyID: "k", Owner: "acme", Day: day, Requests: 42}}); err != nil {
		t.Fatal(err)
	}
	var sum apikey.SweepSummary
	if err := json.Unmarshal([]byte(h.ok("sweep", "--json").stdout), &sum); err != nil || sum.Billing == nil || sum.Billing.MeterEvents != 1 {
		t.Fatalf("sweep --json = %+v, %v; want 1 meter event", sum.Billing, err)
	}
	if r := h.ok("sweep"); !strings.Contains(r.stdout, "Sent 0 meter events") || strings.Contains(r.stdout+r.stderr, "S3CRET") {
		t.Errorf("second sweep printed %q, %q", r.stdout, r.stderr)
	}
	if got := s.Received(); len(got) != 1 || got[0].Value != 42 || got[0].Customer != "cus_Acme1" || got[0].Day() != string(day) {
		t.Errorf("Stripe received %+v, want 42 for cus_Acme1 on %s", got, day)
	}
}
