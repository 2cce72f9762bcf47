package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// Billing checks BillingStore: an attempt recorded only from the day's
// exported amount and with none pending, advanced only from it (compare
// and set: ErrExportMoved otherwise, changing nothing), one winner of two
// concurrent moves from one value, Exported's range and order, the linked
// owners paged in customer order, and refusals.
func Billing(t *testing.T, newStore NewStore) { runCases(t, newStore, billingCases) }

// attempt is an export attempt from from to to, at T0, recorded a
// microsecond after it (Sent is kept to the microsecond).
func attempt(from, to int64) store.ExportAttempt {
	return store.ExportAttempt{From: from, To: to, Identifier: fmt.Sprintf("id-%d", from), Timestamp: T0, Sent: T0.Add(time.Microsecond)}
}

// exported reads the owner's export records of November 2026.
func exported(t *testing.T, s store.BillingStore, owner string) []store.DayExport {
	t.Helper()
	got, err := s.Exported(context.Background(), owner, "2026-11-01", "2026-11-30")
	if err != nil {
		t.Fatal(err)
	}
	return got
}

var billingCases = []contractCase{
	{"an attempt abandoned is cleared without advancing, once", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a := attempt(0, 10)
		if err := s.AbandonExport(ctx, "acme", "2026-11-27", a); !errors.Is(err, store.ErrExportMoved) {
			t.Errorf("AbandonExport with nothing pending = %v, want ErrExportMoved", err)
		}
		if err := s.BeginExport(ctx, "acme", "2026-11-27", a); err != nil {
			t.Fatal(err)
		}
		other := a
		other.Identifier = "other"
		if err := s.AbandonExport(ctx, "acme", "2026-11-27", other); !errors.Is(err, store.ErrExportMoved) {
			t.Errorf("AbandonExport of another attempt = %v, want ErrExportMoved", err)
		}
		if err := s.AbandonExport(ctx, "acme", "2026-11-27", a); err != nil {
			t.Fatal(err)
		}
		if got, want := exported(t, s, "acme"), []store.DayExport{{Day: "2026-11-27"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("after AbandonExport, Exported = %+v, want %+v", got, want)
		}
		for _, err := range []error{s.AbandonExport(ctx, "acme", "2026-11-27", a), s.AdvanceExport(ctx, "acme", "2026-11-27", a)} {
			if !errors.Is(err, store.ErrExportMoved) {
				t.Errorf("AbandonExport or AdvanceExport after AbandonExport = %v, want ErrExportMoved", err)
			}
		}
		// A new attempt from the same amount is recorded.
		b := attempt(0, 12)
		b.Identifier, b.Sent = "id-0-again", T0.Add(24*time.Hour)
		if err := s.BeginExport(ctx, "acme", "2026-11-27", b); err != nil {
			t.Fatal(err)
		}
		if got := exported(t, s, "acme"); len(got) != 1 || got[0].Pending == nil || *got[0].Pending != b {
			t.Errorf("after a new attempt, Exported = %+v, want %+v pending", got, b)
		}
	}},
	{"the export cursor is kept, last write wins", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if got, err := s.ExportCursor(ctx); got != "" || err != nil {
			t.Errorf("ExportCursor of a new store = %q, %v; want \"\"", got, err)
		}
		for _, c := range []string{"cus_A/acme", "cus_B/globex", ""} {
			if err := s.SetExportCursor(ctx, c); err != nil {
				t.Fatal(err)
			}
			if got, err := s.ExportCursor(ctx); got != c || err != nil {
				t.Errorf("ExportCursor = %q, %v; want %q", got, err, c)
			}
		}
	}},
	{"an attempt is recorded, resent as it is, and advanced", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if got := exported(t, s, "acme"); len(got) != 0 {
			t.Fatalf("Exported of a new owner = %+v, want none", got)
		}
		a := attempt(0, 10)
		if err := s.BeginExport(ctx, "acme", "2026-11-27", a); err != nil {
			t.Fatal(err)
		}
		want := []store.DayExport{{Day: "2026-11-27", Pending: &a}}
		if got := exported(t, s, "acme"); !reflect.DeepEqual(got, want) {
			t.Errorf("after BeginExport, Exported = %+v, want %+v", got, want)
		}
		// A second attempt while one is pending, from the same amount or
		// any other, is refused: the pending one is sent again instead.
		for _, b := range []store.ExportAttempt{attempt(0, 12), attempt(10, 12)} {
			if err := s.BeginExport(ctx, "acme", "2026-11-27", b); !errors.Is(err, store.ErrExportMoved) {
				t.Errorf("BeginExport(%+v) with one pending = %v, want ErrExportMoved", b, err)
			}
		}
		// Advancing anything but the pending attempt is refused.
		other := a
		other.Identifier = "other"
		for _, b := range []store.ExportAttempt{other, attempt(0, 12), attempt(10, 12)} {
			if err := s.AdvanceExport(ctx, "acme", "2026-11-27", b); !errors.Is(err, store.ErrExportMoved) {
				t.Errorf("AdvanceExport(%+v) = %v, want ErrExportMoved", b, err)
			}
		}
		if got := exported(t, s, "acme"); !reflect.DeepEqual(got, want) {
			t.Errorf("after refused moves, Exported = %+v, want %+v", got, want)
		}
		if err := s.AdvanceExport(ctx, "acme", "2026-11-27", a); err != nil {
			t.Fatal(err)
		}
		if err := s.AdvanceExport(ctx, "acme", "2026-11-27", a); !errors.Is(err, store.ErrExportMoved) {
			t.Errorf("AdvanceExport twice = %v, want ErrExportMoved", err)
		}
		if err := s.BeginExport(ctx, "acme", "2026-11-27", attempt(0, 5)); !errors.Is(err, store.ErrExportMoved) {
			t.Errorf("BeginExport from an old amount = %v, want ErrExportMoved", err)
		}
		b := attempt(10, 15)
		if err := s.BeginExport(ctx, "acme", "2026-11-27", b); err != nil {
			t.Fatal(err)
		}
		want = []store.DayExport{{Day: "2026-11-27", Exported: 10, Pending: &b}}
		if got := exported(t, s, "acme"); !reflect.DeepEqual(got, want) {
			t.Errorf("after a second BeginExport, Exported = %+v, want %+v", got, want)
		}
	}},
	{"Exported reads the owner's days in range, oldest first", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for _, x := range []struct {
			owner string
			day   store.Day
		}{{"acme", "2026-11-28"}, {"acme", "2026-11-02"}, {"acme", "2026-10-31"}, {"acme", "2026-12-01"}, {"zenith", "2026-11-05"}} {
			a := attempt(0, 3)
			if err := s.BeginExport(ctx, x.owner, x.day, a); err != nil {
				t.Fatal(err)
			}
			if err := s.AdvanceExport(ctx, x.owner, x.day, a); err != nil {
				t.Fatal(err)
			}
		}
		got := exported(t, s, "acme")
		want := []store.DayExport{{Day: "2026-11-02", Exported: 3}, {Day: "2026-11-28", Exported: 3}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Exported = %+v, want %+v", got, want)
		}
	}},
	{"bad arguments are refused", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for _, c := range []struct {
			owner string
			day   store.Day
			a     store.ExportAttempt
		}{
			{"acme/eu", "2026-11-27", attempt(0, 1)},
			{"acme", "2026-13-01", attempt(0, 1)},
			{"acme", "2026-11-27", attempt(5, 5)},
			{"acme", "2026-11-27", attempt(-1, 2)},
			{"acme", "2026-11-27", store.ExportAttempt{To: 1, Timestamp: T0}},
		} {
			if err := s.BeginExport(ctx, c.owner, c.day, c.a); err == nil || errors.Is(err, store.ErrExportMoved) {
				t.Errorf("BeginExport(%q, %q, %+v) = %v, want an error", c.owner, c.day, c.a, err)
			}
		}
		if _, err := s.Exported(ctx, "acme/eu", "2026-11-01", "2026-11-30"); !errors.Is(err, store.ErrInvalidOwner) {
			t.Errorf("Exported of a bad owner = %v, want ErrInvalidOwner", err)
		}
	}},
	{"of two concurrent moves from one value, exactly one wins", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for round := range 5 {
			day := store.Day(fmt.Sprintf("2026-11-%02d", round+1))
			from := int64(0)
			if round%2 == 1 { // also from a value already exported
				a := attempt(0, 4)
				if err := s.BeginExport(ctx, "acme", day, a); err != nil {
					t.Fatal(err)
				}
				if err := s.AdvanceExport(ctx, "acme", day, a); err != nil {
					t.Fatal(err)
				}
				from = 4
			}
			attempts := []store.ExportAttempt{attempt(from, from+1), attempt(from, from+2)}
			attempts[1].Identifier += "-b"
			won := race(t, func(i int) error { return s.BeginExport(ctx, "acme", day, attempts[i]) })
			if len(won) != 1 {
				t.Fatalf("round %d: BeginExport won %d times, want once", round, len(won))
			}
			a := attempts[won[0]]
			if won := race(t, func(int) error { return s.AdvanceExport(ctx, "acme", day, a) }); len(won) != 1 {
				t.Fatalf("round %d: AdvanceExport won %d times, want once", round, len(won))
			}
			got, err := s.Exported(ctx, "acme", day, day)
			if want := []store.DayExport{{Day: day, Exported: a.To}}; err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("round %d: Exported = %+v, %v; want %+v", round, got, err, want)
			}
		}
	}},
	{"linked owners are the plans with a customer, paged in customer order", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		plans := map[string]string{"a1": "cus_B", "a2": "cus_A", "a3": "", "a4": "cus_B", "a5": "cus_C", "a6": "cus_Z"}
		for owner, cus := range plans {
			if err := s.SetPlan(ctx, store.Plan{Owner: owner, StripeCustomer: cus, UpdatedAt: T0}); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"a2", "a1", "a4", "a5", "a6"}
		var got []string
		after := ""
		for range 10 {
			page, next, err := s.LinkedOwners(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 2 {
				t.Fatalf("LinkedOwners(limit 2) = %d plans", len(page))
			}
			for _, p := range page {
				if p.StripeCustomer != plans[p.Owner] || !p.UpdatedAt.Equal(T0) {
					t.Errorf("LinkedOwners gave %+v", p)
				}
				got = append(got, p.Owner)
			}
			if after = next; after == "" {
				break
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("LinkedOwners paged = %v, want %v", got, want)
		}
		page, _, err := s.LinkedOwners(ctx, "cus_C", 10)
		if err != nil || len(page) != 2 || page[0].Owner != "a5" || page[1].Owner != "a6" {
			t.Errorf("LinkedOwners from cus_C = %+v, %v; want a5 and a6", page, err)
		}
		if err := s.SetPlan(ctx, store.Plan{Owner: "a6", UpdatedAt: T0}); err != nil {
			t.Fatal(err)
		}
		if page, next, err := s.LinkedOwners(ctx, "cus_C", 10); err != nil || len(page) != 1 || next != "" {
			t.Errorf("after a6's customer is cleared, LinkedOwners from cus_C = %+v, %q, %v; want a5 alone", page, next, err)
		}
	}},
	{"a refusal is recorded for a plan", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if r, err := s.BillingRefused(ctx, "acme"); err != nil || r != (store.BillingRefusal{}) {
			t.Fatalf("BillingRefused of a new owner = %+v, %v; want none", r, err)
		}
		r := store.BillingRefusal{PlanUpdatedAt: T0, Reason: "No such customer: 'cus_X'", At: T0.Add(time.Hour)}
		if err := s.RefuseBilling(ctx, "acme", r); err != nil {
			t.Fatal(err)
		}
		got, err := s.BillingRefused(ctx, "acme")
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("BillingRefused = %+v, %v; want %+v", got, err, r)
		}
		if !got.Refuses(store.Plan{UpdatedAt: T0}) || got.Refuses(store.Plan{UpdatedAt: T0.Add(time.Second)}) {
			t.Errorf("the refusal must apply to the plan of T0 alone")
		}
		if got := exported(t, s, "acme"); len(got) != 0 {
			t.Errorf("a refusal shows in Exported: %+v", got)
		}
	}},
}

// race runs f(0) and f(1) at once and returns the indexes that succeeded;
// a failure other than ErrExportMoved fails the test.
func race(t *testing.T, f func(i int) error) []int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	var won []int
	for i, err := range errs {
		switch {
		case err == nil:
			won = append(won, i)
		case !errors.Is(err, store.ErrExportMoved):
			t.Fatalf("a concurrent move failed: %v", err)
		}
	}
	return won
}
