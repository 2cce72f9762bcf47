package apikey

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/stripetest"
	"github.com/keygate/keygate/internal/testkit"
)

// TestSweepExportsUsage: a Gate with STRIPE_SECRET_KEY and no events
// exports on Sweep, counts included in its summary; without the key, Sweep
// does nothing and its summary has no billing part.
func TestSweepExportsUsage(t *testing.T) {
	ctx := context.Background()
	s := stripetest.NewStandIn(t)
	st := memstore.New()
	clock := testkit.NewFakeClock()
	if err := st.SetPlan(ctx, store.Plan{Owner: "acme", StripeCustomer: "cus_Acme1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddUsage(ctx, "i", 1, []store.UsageCount{{KeyID: "k", Owner: "acme", Day: store.DayOf(clock.Now()), Requests: 9}}); err != nil {
		t.Fatal(err)
	}
	log, _ := testkit.Logger()
	off := New(DefaultConfig(), st, WithClock(clock.Now), WithLogger(log))
	defer off.Close(ctx)
	if sum, err := off.Sweep(ctx); err != nil || sum.Billing != nil || len(s.Received()) != 0 {
		t.Errorf("Sweep without a key = %+v, %v; want nothing", sum, err)
	}
	cfg := DefaultConfig()
	cfg.StripeSecretKey, cfg.StripeAPIBase = "sk_test_x", s.URL
	g := New(cfg, st, WithClock(clock.Now), WithLogger(log))
	defer g.Close(ctx)
	sum, err := g.Sweep(ctx)
	if err != nil || sum.Billing == nil || sum.Billing.MeterEvents != 1 || len(s.Received()) != 1 || s.Received()[0].Value != 9 {
		t.Fatalf("Sweep = %+v, %v; want one meter event of 9", sum, err)
	}
	b, _ := json.Marshal(sum)
	if !strings.Contains(string(b), `"billing":{"meter_events":1,`) || !strings.Contains(string(b), `"published":0`) {
		t.Errorf("the summary's JSON = %s", b)
	}
}
