package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
)

// billingFixture is what TestOwnerUsageExported writes into a store: the
// owner acme linked to a Stripe customer, its usage over three days of
// January 2030 and one of November 2029, and the sweep's exports of them.
type billingFixture interface {
	keyStore
	store.UsageStore
	store.BillingStore
}

const fixtureCustomer = "cus_NffrFeUfNV2Hib"

// writeBillingFixture writes the fixture: on 2030-01-01 100 requests, all
// exported in two events; on 2030-01-02 50, 30 exported and an event of
// the other 20 recorded and not confirmed (sending); on 2029-12-31 7 (the
// month before); in November, by the clock's 2030-01-02, whose 35 days
// start on 2029-11-29: on the 20th 9 never exported (too old), on the
// 21st 4 in an event never confirmed (in doubt), on the 28th 2 (too old),
// on the 29th 3 (pending). globex has 5 on 2030-01-01 and no customer.
func writeBillingFixture(t *testing.T, st billingFixture) store.Plan {
	t.Helper()
	ctx := t.Context()
	_, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", Name: "a", CreatedAt: start.AddDate(0, -2, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := st.AddUsage(ctx, "test", 1, []store.UsageCount{
		{KeyID: k.ID, Owner: "acme", Day: "2030-01-01", Requests: 100}, {KeyID: k.ID, Owner: "acme", Day: "2030-01-02", Requests: 50},
		{KeyID: k.ID, Owner: "acme", Day: "2029-12-31", Requests: 7}, {KeyID: k.ID, Owner: "acme", Day: "2029-11-20", Requests: 9},
		{KeyID: k.ID, Owner: "acme", Day: "2029-11-21", Requests: 4},
		{KeyID: k.ID, Owner: "acme", Day: "2029-11-28", Requests: 2}, {KeyID: k.ID, Owner: "acme", Day: "2029-11-29", Requests: 3},
		{KeyID: "g", Owner: "globex", Day: "2030-01-01", Requests: 5},
	}); err != nil {
		t.Fatal(err)
	}
	plan := store.Plan{Owner: "acme", StripeCustomer: fixtureCustomer, UpdatedAt: start.Add(-time.Hour)}
	if err := st.SetPlan(ctx, plan); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, e := range []struct {
		day     store.Day
		a       store.ExportAttempt
		confirm bool
	}{
		{"2030-01-01", store.ExportAttempt{From: 0, To: 60, Identifier: "i1", Timestamp: at, Sent: at}, true},
		{"2030-01-01", store.ExportAttempt{From: 60, To: 100, Identifier: "i2", Timestamp: at, Sent: at}, true},
		{"2030-01-02", store.ExportAttempt{From: 0, To: 30, Identifier: "i3", Timestamp: at.Add(24 * time.Hour), Sent: at.Add(24 * time.Hour)}, true},
		{"2030-01-02", store.ExportAttempt{From: 30, To: 50, Identifier: "i4", Timestamp: at.Add(24 * time.Hour), Sent: at.Add(24 * time.Hour)}, false},
		{"2029-11-21", store.ExportAttempt{From: 0, To: 4, Identifier: "i0", Timestamp: at.AddDate(0, 0, -41), Sent: at.AddDate(0, 0, -41)}, false},
	} {
		if err := st.BeginExport(ctx, "acme", e.day, e.a); err != nil {
			t.Fatal(err)
		}
		if e.confirm {
			if err := st.AdvanceExport(ctx, "acme", e.day, e.a); err != nil {
				t.Fatal(err)
			}
		}
	}
	p, err := st.GetPlan(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOwnerUsageExported: usage --owner --month shows, per UTC day, the
// requests stored and those exported to Stripe, the pending difference
// and the day's state, with the month's sums and the owner's customer; as
// text, as --days CSV and as JSON. A refusal by Stripe shows until the
// plan changes. On the emulator and in memory.
func TestOwnerUsageExported(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, st billingFixture, run func(args ...string) result) {
		plan := writeBillingFixture(t, st)

		r := run("usage", "--owner", "acme", "--month", "2030-01", "--json")
		var v ownerUsageView
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("usage --json printed %q: %v", r.stdout, err)
		}
		sending := store.ExportAttempt{From: 30, To: 50, Identifier: "i4", Timestamp: time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC), Sent: time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)}
		if v.Owner != "acme" || v.Month != "2030-01" || v.StripeCustomer != fixtureCustomer || v.StripeRefused != nil ||
			v.Total != 150 || v.Exported != 130 || v.Pending != 20 || len(v.Keys) != 1 || v.Keys[0].Requests != 150 || len(v.Days) != 2 ||
			v.Days[0] != (ownerDay{Day: "2030-01-01", Stored: 100, Exported: 100, State: dayExported}) ||
			v.Days[1].Stored != 50 || v.Days[1].Exported != 30 || v.Days[1].Pending != 20 || v.Days[1].State != daySending ||
			v.Days[1].Sending == nil || !v.Days[1].Sending.Timestamp.Equal(sending.Timestamp) || v.Days[1].Sending.Identifier != "i4" {
			t.Errorf("usage --json = %+v", v)
		}

		r = run("usage", "--owner", "acme", "--month", "2030-01", "--days", "--csv")
		if want := "day,stored,exported,pending,state\n2030-01-01,100,100,0,exported\n2030-01-02,50,30,20,sending\ntotal,150,130,20,\n"; r.stdout != want {
			t.Errorf("usage --days --csv =\n%s\nwant\n%s", r.stdout, want)
		}
		r = run("usage", "--owner", "acme", "--month", "2030-01")
		text := strings.Join(strings.Fields(r.stdout), " ")
		for _, want := range []string{"total 2030-01 150 DAY STORED EXPORTED PENDING STATE 2030-01-01 100 100 0 exported 2030-01-02 50 30 20 sending total 150 130 20",
			"stripe: customer " + fixtureCustomer} {
			if !strings.Contains(text, want) {
				t.Errorf("usage --owner lacks %q:\n%s", want, r.stdout)
			}
		}

		// A month partly past Stripe's 35 days.
		r = run("usage", "--owner", "acme", "--month", "2029-11", "--days", "--csv")
		if want := "day,stored,exported,pending,state\n2029-11-20,9,0,9,too old\n2029-11-21,4,0,4,in doubt\n" +
			"2029-11-28,2,0,2,too old\n2029-11-29,3,0,3,pending\ntotal,18,0,18,\n"; r.stdout != want {
			t.Errorf("usage of 2029-11 =\n%s\nwant\n%s", r.stdout, want)
		}
		// The day in doubt, settled as applied, is exported.
		r = run("billing", "settle", "acme", "2029-11-21", "--applied")
		if !strings.Contains(r.stdout, "Settled 2029-11-21 of owner \"acme\" as applied: 4 requests exported (identifier i0)") {
			t.Errorf("billing settle printed %q", r.stdout)
		}
		r = run("usage", "--owner", "acme", "--month", "2029-11", "--days", "--csv")
		if !strings.Contains(r.stdout, "\n2029-11-21,4,4,0,exported\n") {
			t.Errorf("usage of 2029-11 after settle:\n%s", r.stdout)
		}
		// An owner without a customer: nothing is sent.
		r = run("usage", "--owner", "globex", "--month", "2030-01", "--days")
		if text := strings.Join(strings.Fields(r.stdout), " "); !strings.Contains(text, "2030-01-01 5 0 5 not linked") ||
			!strings.Contains(r.stdout, "stripe: not linked") {
			t.Errorf("usage of globex:\n%s", r.stdout)
		}

		// The event out is confirmed, and 10 requests of 2030-01-01 arrive
		// late: that day is pending again, by the difference.
		if err := st.AdvanceExport(t.Context(), "acme", "2030-01-02", sending); err != nil {
			t.Fatal(err)
		}
		if err := st.AddUsage(t.Context(), "test", 2, []store.UsageCount{{KeyID: v.Keys[0].KeyID, Owner: "acme", Day: "2030-01-01", Requests: 10}}); err != nil {
			t.Fatal(err)
		}
		days := func() string {
			t.Helper()
			return run("usage", "--owner", "acme", "--month", "2030-01", "--days", "--csv").stdout
		}
		if got, want := days(), "day,stored,exported,pending,state\n2030-01-01,110,100,10,pending\n2030-01-02,50,50,0,exported\ntotal,160,150,10,\n"; got != want {
			t.Errorf("after a late count:\n%s\nwant\n%s", got, want)
		}

		// Stripe refused the customer under this plan: the pending day says
		// so, and the text names Stripe's reason, until the plan changes.
		if err := st.RefuseBilling(t.Context(), "acme", store.BillingRefusal{PlanUpdatedAt: plan.UpdatedAt,
			Reason: "No such customer: '" + fixtureCustomer + "'", At: start.Add(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if got := days(); !strings.Contains(got, "\n2030-01-01,110,100,10,refused\n") {
			t.Errorf("after a refusal:\n%s", got)
		}
		r = run("usage", "--owner", "acme", "--month", "2030-01", "--days")
		if !strings.Contains(r.stdout, "stripe: customer "+fixtureCustomer+", refused by Stripe at "+formatTime(start.Add(-time.Minute))+": No such customer: '"+fixtureCustomer+"'; skipped until the plan changes\n") {
			t.Errorf("usage after a refusal:\n%s", r.stdout)
		}
		plan.MonthlyQuota, plan.UpdatedAt = 1000, start
		if err := st.SetPlan(t.Context(), plan); err != nil {
			t.Fatal(err)
		}
		if got := days(); !strings.Contains(got, "\n2030-01-01,110,100,10,pending\n") {
			t.Errorf("after the plan changed:\n%s", got)
		}
	}
	t.Run("memory", func(t *testing.T) {
		st := closingMem{memstore.New()}
		check(t, st, func(args ...string) result {
			var r result
			r.stdout = memCLI(t, st, nil, args...)
			return r
		})
	})
	t.Run("emulator", func(t *testing.T) {
		h := newHarness(t)
		fs := firestorestore.New(firestorestore.Config{Project: h.env["GOOGLE_CLOUD_PROJECT"], Database: "(default)", Collection: "api_keys"})
		t.Cleanup(func() { fs.Close() })
		check(t, fs, h.ok)
	})
}
