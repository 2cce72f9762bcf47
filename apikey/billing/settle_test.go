package billing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/billing"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/stripetest"
	"github.com/keygate/keygate/internal/testkit"
)

// TestInDoubtSettle: Stripe keeps the first event and its answer is lost,
// then fails every send for 24 hours of hourly sweeps: once the attempt is
// older than MaxResendAge it is not sent again, each run logs one ERROR
// naming it and counts it in doubt, and the owner's other days go on.
// Settled applied, nothing is resent and the export advances; settled not
// applied, the next sweep sends the value under a new identifier. Either
// way the values Stripe kept, one per identifier, are the stored usage.
func TestInDoubtSettle(t *testing.T) {
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprint("applied=", applied), func(t *testing.T) {
			forEachStandIn(t, 0, func(t *testing.T, f *fixture, s *stripetest.StandIn) {
				ctx := context.Background()
				f.link(t, "acme", "cus_Acme1")
				f.traffic(t, "acme", day1, 10)
				s.SetFault(func(n int, _ stripetest.Event) stripetest.Fault {
					if n == 1 && applied {
						return stripetest.LoseAnswer
					}
					return stripetest.ServerError
				})
				f.sweep(t)
				first := s.Received()[0]
				// Settling before the attempt is in doubt is refused.
				if _, err := billing.Settle(ctx, f.st, "acme", day1, f.clock.Now(), applied); !errors.Is(err, billing.ErrNotInDoubt) {
					t.Errorf("Settle of a fresh attempt = %v, want ErrNotInDoubt", err)
				}
				for range 22 {
					f.clock.Advance(time.Hour)
					if sum := f.sweep(t); sum.InDoubt != 0 {
						t.Fatalf("sweep at %v = %+v: in doubt before MaxResendAge", f.clock.Now(), sum)
					}
				}
				sentBefore := len(s.Received())
				s.SetFault(nil) // Stripe is back: the old identifier must not go out now
				f.clock.Advance(2 * time.Hour)
				f.traffic(t, "acme", day2, 7) // another day of the owner goes on
				mark := len(f.log.String())
				sum := f.sweep(t)
				if sum.InDoubt != 1 || sum.MeterEvents != 1 {
					t.Errorf("sweep after 24 h = %+v, want 1 in doubt and day2's event", sum)
				}
				for _, e := range s.Received()[sentBefore:] {
					if e.Identifier == first.Identifier {
						t.Errorf("the attempt in doubt was sent again at %v", f.clock.Now())
					}
				}
				logged := f.log.String()[mark:]
				if strings.Count(logged, `"severity":"ERROR"`) != 1 || !strings.Contains(logged, first.Identifier) ||
					!strings.Contains(logged, `"owner":"acme"`) || !strings.Contains(logged, `"day":"`+string(day1)) || !strings.Contains(logged, `"value":10`) {
					t.Errorf("log = %s\nwant one ERROR naming owner, day, identifier and value", logged)
				}
				if sum := f.sweep(t); sum.InDoubt != 1 {
					t.Errorf("next sweep = %+v, want the day still in doubt", sum)
				}
				settled, err := billing.Settle(ctx, f.st, "acme", day1, f.clock.Now(), applied)
				if err != nil || settled.Identifier != first.Identifier {
					t.Fatalf("Settle = %+v, %v", settled, err)
				}
				if _, err := billing.Settle(ctx, f.st, "acme", day1, f.clock.Now(), applied); !errors.Is(err, billing.ErrNotInDoubt) {
					t.Errorf("Settle twice = %v, want ErrNotInDoubt", err)
				}
				before := len(s.Received())
				sum = f.sweep(t)
				got := s.Received()[before:]
				switch {
				case applied && (len(got) != 0 || sum.InDoubt != 0):
					t.Errorf("sweep after settle --applied = %+v, sent %+v: want nothing", sum, got)
				case !applied && (len(got) != 1 || got[0].Identifier == first.Identifier || got[0].Value != 10 || sum.InDoubt != 0):
					t.Errorf("sweep after settle --not-applied = %+v, sent %+v: want 10 under a new identifier", sum, got)
				}
				keptOnce(t, s.Received())
				f.exact(t, s.Totals(), map[string]string{"acme": "cus_Acme1"})
			})
		})
	}
}

// TestSettleMoved: a settle whose day moved between its read and its write
// (another settle) changes nothing and says so.
func TestSettleMoved(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		a := store.ExportAttempt{From: 0, To: 5, Identifier: "kg-x", Timestamp: testkit.T0, Sent: testkit.T0}
		if err := st.BeginExport(ctx, "acme", day1, a); err != nil {
			t.Fatal(err)
		}
		later := testkit.T0.Add(billing.MaxResendAge + time.Minute)
		if _, err := billing.Settle(ctx, st, "acme", day1, later, false); err != nil {
			t.Fatal(err)
		}
		if err := st.AdvanceExport(ctx, "acme", day1, a); !errors.Is(err, store.ErrExportMoved) {
			t.Errorf("AdvanceExport of an abandoned attempt = %v, want ErrExportMoved", err)
		}
	})
}

// TestCursorReachesEveryOwner: with runs bounded to 3 owners, 10 owners
// are each exported in turn, in customer order, wrapping to the start:
// none starved, whichever owners come first.
func TestCursorReachesEveryOwner(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		s := stripetest.NewStandIn(t)
		f := newFixture(t, st, s.URL, 0)
		log, _ := testkit.Logger()
		ex := billing.New(st, billing.Options{SecretKey: secretKey, APIBase: s.URL, Log: log, MaxOwners: 3})
		const n = 10
		for i := range n {
			f.link(t, fmt.Sprintf("owner%d", i), fmt.Sprintf("cus_C%02d", i))
		}
		var order []string
		for run := range 8 { // 24 owner reads: every owner twice and more
			for i := range n {
				f.traffic(t, fmt.Sprintf("owner%d", i), day1, 1)
			}
			before := len(s.Received())
			sum, err := ex.Export(context.Background(), f.clock.Now())
			if err != nil || sum.MeterEvents != 3 || !sum.More {
				t.Fatalf("run %d = %+v, %v; want 3 owners exported and more", run, sum, err)
			}
			for _, e := range s.Received()[before:] {
				order = append(order, e.Customer)
			}
		}
		for i, c := range order {
			if want := fmt.Sprintf("cus_C%02d", i%n); c != want {
				t.Fatalf("owners exported in the order %v: want each in turn, %s at %d", order, want, i)
			}
		}
	})
}
