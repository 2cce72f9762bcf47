package billing_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/billing"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/stripetest"
	"github.com/keygate/keygate/internal/testkit"
)

func TestMain(m *testing.M) {
	os.Exit(emulator.Main(m))
}

// secretKey is the tests' Stripe key: stripe-mock takes any sk_test_ key.
const secretKey = "sk_test_keygateS3CRET"

// day1 and day2 are the two UTC days of the tests' traffic; the clock
// starts at noon of day1 (testkit.T0).
const (
	day1 store.Day = "2026-11-27"
	day2 store.Day = "2026-11-28"
)

// fixture is a store, a clock and an exporter to base.
type fixture struct {
	st    store.Store
	clock *testkit.FakeClock
	log   *testkit.SyncBuffer
	ex    *billing.Exporter
	seq   atomic.Int64
	sent  *recorder
}

func newFixture(t *testing.T, st store.Store, base string, timeout time.Duration) *fixture {
	log, buf := testkit.Logger()
	f := &fixture{st: st, clock: testkit.NewFakeClock(), log: buf, sent: &recorder{}}
	f.ex = billing.New(st, billing.Options{SecretKey: secretKey, APIBase: base, CallTimeout: timeout, Log: log,
		HTTPClient: &http.Client{Transport: f.sent}})
	return f
}

// link gives owner a plan with customer.
func (f *fixture) link(t *testing.T, owner, customer string) {
	t.Helper()
	if err := f.st.SetPlan(context.Background(), store.Plan{Owner: owner, StripeCustomer: customer, UpdatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
}

// traffic stores n requests of owner on day, as an instance's meter
// writes them.
func (f *fixture) traffic(t *testing.T, owner string, day store.Day, n int64) {
	t.Helper()
	c := store.UsageCount{KeyID: "key-" + owner, Owner: owner, Day: day, Requests: n}
	if err := f.st.AddUsage(context.Background(), "test", f.seq.Add(1), []store.UsageCount{c}); err != nil {
		t.Fatal(err)
	}
}

// sweep runs one export at the clock's time.
func (f *fixture) sweep(t *testing.T) billing.Summary {
	t.Helper()
	sum, err := f.ex.Export(context.Background(), f.clock.Now())
	if err != nil {
		t.Fatalf("Export: %v (%+v)", err, sum)
	}
	return sum
}

// exact checks that what Stripe kept, one value per identifier, is the
// stored usage of each owner and day, and that the store's exported
// amounts are too.
func (f *fixture) exact(t *testing.T, kept map[string]map[string]int64, owners map[string]string) {
	t.Helper()
	ctx := context.Background()
	for owner, customer := range owners {
		usage, err := f.st.OwnerDailyUsage(ctx, owner, "2026-10-01", "2026-12-31")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{}
		for _, u := range usage {
			want[string(u.Day)] = u.Requests
		}
		if got := kept[customer]; !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s (%s): Stripe holds %v, stored usage is %v", owner, customer, got, want)
		}
		exports, err := f.st.Exported(ctx, owner, "2026-10-01", "2026-12-31")
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range exports {
			if x.Exported != want[string(x.Day)] || x.Pending != nil {
				t.Errorf("%s: export record %+v, stored %d", owner, x, want[string(x.Day)])
			}
		}
	}
}

// recorder is a RoundTripper that records the meter events Stripe answered
// 200, by identifier: what stripe-mock, which keeps nothing, accepted.
type recorder struct {
	mu     sync.Mutex
	events []stripetest.Event
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK || req.URL.Path != "/v1/billing/meter_events" {
		return resp, err
	}
	form, _ := url.ParseQuery(string(body))
	value, _ := strconv.ParseInt(form.Get("payload[value]"), 10, 64)
	ts, _ := strconv.ParseInt(form.Get("timestamp"), 10, 64)
	r.mu.Lock()
	r.events = append(r.events, stripetest.Event{Name: form.Get("event_name"), Customer: form.Get("payload[stripe_customer_id]"),
		Value: value, Identifier: form.Get("identifier"), Timestamp: time.Unix(ts, 0).UTC()})
	r.mu.Unlock()
	return resp, nil
}

// kept sums the recorded events per customer and day, each identifier
// once; it fails the test if an identifier came with two values.
func (r *recorder) kept(t *testing.T) map[string]map[string]int64 {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	return keptOnce(t, r.events)
}

// keptOnce sums events per customer and day, each identifier once, and
// fails the test if an identifier came with two values or days.
func keptOnce(t *testing.T, events []stripetest.Event) map[string]map[string]int64 {
	t.Helper()
	first := map[string]stripetest.Event{}
	out := map[string]map[string]int64{}
	for _, e := range events {
		if f, ok := first[e.Identifier]; ok {
			if f.Value != e.Value || f.Day() != e.Day() || f.Customer != e.Customer {
				t.Errorf("identifier %s sent as %+v and as %+v", e.Identifier, f, e)
			}
			continue
		}
		first[e.Identifier] = e
		if out[e.Customer] == nil {
			out[e.Customer] = map[string]int64{}
		}
		out[e.Customer][e.Day()] += e.Value
	}
	return out
}

var twoOwners = map[string]string{"acme": "cus_Acme1", "globex": "cus_Globex2"}

// TestExactOnStripeMock is the first check, on the Firestore
// emulator and stripe-mock (which checks each request against Stripe's API
// description): two linked owners, traffic over two UTC days on a fake
// clock, with counts arriving after their day was exported, and sweeps
// along the way; the meter events Stripe accepted, each identifier once,
// add up to the stored usage per owner and day, exactly.
func TestExactOnStripeMock(t *testing.T) {
	base := stripetest.Mock(t)
	f := newFixture(t, testkit.EmulatorStore(t), base, 0)
	for owner, cus := range twoOwners {
		f.link(t, owner, cus)
	}
	f.traffic(t, "acme", day1, 120)
	f.traffic(t, "globex", day1, 7)
	if sum := f.sweep(t); sum.MeterEvents != 2 {
		t.Errorf("first sweep = %+v, want 2 meter events", sum)
	}
	f.traffic(t, "acme", day1, 30)  // late: flushed after day1 was exported
	f.clock.Advance(13 * time.Hour) // day2, 01:00
	f.traffic(t, "acme", day2, 5)
	f.traffic(t, "globex", day1, 1) // late
	f.traffic(t, "globex", day2, 900)
	if sum := f.sweep(t); sum.MeterEvents != 4 {
		t.Errorf("second sweep = %+v, want 4 meter events", sum)
	}
	if sum := f.sweep(t); sum.MeterEvents != 0 {
		t.Errorf("a sweep with nothing new = %+v, want no meter event", sum)
	}
	f.exact(t, f.sent.kept(t), twoOwners)
	for _, e := range f.sent.events {
		if e.Name != "api_requests" || e.Timestamp.After(f.clock.Now()) || e.Day() > string(day2) || len(e.Identifier) > 100 {
			t.Errorf("meter event %+v: want api_requests, stamped inside its day, not in the future", e)
		}
	}
}

// standIn is a fixture on the recording stand-in, on each store.
func forEachStandIn(t *testing.T, timeout time.Duration, run func(t *testing.T, f *fixture, s *stripetest.StandIn)) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		s := stripetest.NewStandIn(t)
		run(t, newFixture(t, st, s.URL, timeout), s)
	})
}

// TestLostAnswerResendsSameIdentifier: Stripe keeps an event and its
// answer is lost (a 502, or the connection cut): the next sweep sends the
// same identifier with the same value, Stripe refuses it as one it holds,
// and the export advances; the values kept, one per identifier, are the
// stored usage. Counts that arrive before the resend go in a second event.
func TestLostAnswerResendsSameIdentifier(t *testing.T) {
	for _, fault := range []stripetest.Fault{stripetest.LoseAnswer, stripetest.CutAnswer} {
		t.Run(fmt.Sprint(fault), func(t *testing.T) {
			forEachStandIn(t, 0, func(t *testing.T, f *fixture, s *stripetest.StandIn) {
				f.link(t, "acme", "cus_Acme1")
				f.traffic(t, "acme", day1, 10)
				s.SetFault(func(n int, _ stripetest.Event) stripetest.Fault {
					if n == 1 {
						return fault
					}
					return stripetest.None
				})
				if sum := f.sweep(t); sum.Failed != 1 || sum.MeterEvents != 0 {
					t.Fatalf("sweep with a lost answer = %+v, want 1 failed", sum)
				}
				f.traffic(t, "acme", day1, 4) // before the resend
				if sum := f.sweep(t); sum.Resent != 1 || sum.MeterEvents != 2 {
					t.Errorf("next sweep = %+v, want the resend and one event for the 4 more", sum)
				}
				got := s.Received()
				if len(got) != 3 || got[0].Identifier != got[1].Identifier || got[0].Value != 10 || got[1].Value != 10 ||
					got[2].Identifier == got[0].Identifier || got[2].Value != 4 {
					t.Errorf("received %+v: want the same identifier twice with 10, then another with 4", got)
				}
				f.exact(t, s.Totals(), map[string]string{"acme": "cus_Acme1"})
				keptOnce(t, got)
			})
		})
	}
}

// TestLateCountsNewIdentifier: counts stored after their day was exported
// go in one event for exactly the difference, under a new identifier.
func TestLateCountsNewIdentifier(t *testing.T) {
	forEachStandIn(t, 0, func(t *testing.T, f *fixture, s *stripetest.StandIn) {
		f.link(t, "acme", "cus_Acme1")
		f.traffic(t, "acme", day1, 50)
		f.sweep(t)
		f.clock.Advance(13 * time.Hour)
		f.traffic(t, "acme", day1, 3)
		if sum := f.sweep(t); sum.MeterEvents != 1 {
			t.Errorf("sweep after late counts = %+v, want 1 meter event", sum)
		}
		got := s.Received()
		if len(got) != 2 || got[1].Value != 3 || got[1].Identifier == got[0].Identifier || got[1].Day() != string(day1) {
			t.Errorf("received %+v: want a second event of 3 for %s under a new identifier", got, day1)
		}
		if got[1].Identifier != billing.Identifier("acme", day1, 50, store.StoredTime(f.clock.Now())) {
			t.Errorf("identifier %s, want the one of (acme, %s, 50)", got[1].Identifier, day1)
		}
		f.exact(t, s.Totals(), map[string]string{"acme": "cus_Acme1"})
	})
}

// TestConcurrentSweeps: two sweeps at once, ten times over, with traffic
// between: no identifier is ever sent with two values, and once they have
// settled Stripe's totals are the stored usage.
func TestConcurrentSweeps(t *testing.T) {
	forEachStandIn(t, 0, func(t *testing.T, f *fixture, s *stripetest.StandIn) {
		for owner, cus := range twoOwners {
			f.link(t, owner, cus)
		}
		f.clock.Advance(13 * time.Hour) // day2, 01:00
		for round := range 10 {
			f.traffic(t, "acme", day1, int64(round+1))
			f.traffic(t, "globex", day1, 3)
			f.traffic(t, "globex", day2, int64(2*round+1))
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					if _, err := f.ex.Export(context.Background(), f.clock.Now()); err != nil {
						t.Errorf("round %d: %v", round, err)
					}
				})
			}
			wg.Wait()
		}
		f.sweep(t) // what a sweep that lost a race left
		keptOnce(t, s.Received())
		f.exact(t, s.Totals(), twoOwners)
	})
}

// TestBadCustomer: Stripe refuses an owner's customer: one ERROR naming the
// owner and Stripe's message, the other owner exported; later sweeps skip
// the owner without a word until its plan changes.
func TestBadCustomer(t *testing.T) {
	forEachStandIn(t, 0, func(t *testing.T, f *fixture, s *stripetest.StandIn) {
		s.Unknown("cus_Gone")
		f.link(t, "acme", "cus_Gone")
		f.link(t, "globex", "cus_Globex2")
		f.traffic(t, "acme", day1, 10)
		f.traffic(t, "globex", day1, 20)
		if sum := f.sweep(t); sum.OwnersRefused != 1 || sum.MeterEvents != 1 {
			t.Errorf("sweep = %+v, want acme refused and globex exported", sum)
		}
		if sum := f.sweep(t); sum.OwnersSkipped != 1 || sum.MeterEvents != 0 {
			t.Errorf("second sweep = %+v, want acme skipped", sum)
		}
		logs := f.log.String()
		if n := strings.Count(logs, `"severity":"ERROR"`); n != 1 || !strings.Contains(logs, `"owner":"acme"`) ||
			!strings.Contains(logs, "No such customer: 'cus_Gone'") {
			t.Errorf("%d ERROR lines, want one naming acme and Stripe's message: %s", n, logs)
		}
		if strings.Contains(logs, secretKey) || strings.Contains(logs, "S3CRET") {
			t.Errorf("the logs hold the secret key: %s", logs)
		}
		f.clock.Advance(time.Minute)
		f.link(t, "acme", "cus_Acme1") // the plan fixed
		if sum := f.sweep(t); sum.MeterEvents != 1 || sum.Resent != 1 {
			t.Errorf("sweep after the plan changed = %+v, want acme's event sent", sum)
		}
		f.exact(t, s.Totals(), map[string]string{"acme": "cus_Acme1", "globex": "cus_Globex2"})
	})
}

// TestRateLimit: a 429 with Retry-After 1 is waited for, and the event
// sent once more; a second 429 stops the run's sends, and the next run
// exports the rest.
func TestRateLimit(t *testing.T) {
	forEachStandIn(t, 0, func(t *testing.T, f *fixture, s *stripetest.StandIn) {
		for owner, cus := range twoOwners {
			f.link(t, owner, cus)
		}
		f.traffic(t, "acme", day1, 10)
		f.traffic(t, "globex", day1, 20)
		s.SetFault(func(n int, _ stripetest.Event) stripetest.Fault {
			if n == 1 {
				return stripetest.RateLimit
			}
			return stripetest.None
		})
		start := time.Now()
		if sum := f.sweep(t); sum.MeterEvents != 2 || sum.RateLimited {
			t.Errorf("sweep with one 429 = %+v, want both exported after the wait", sum)
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("the sweep took %v: it did not wait the Retry-After of 1s", d)
		}
		f.traffic(t, "acme", day1, 1)
		f.traffic(t, "globex", day1, 1)
		s.SetFault(func(int, stripetest.Event) stripetest.Fault { return stripetest.RateLimit })
		if sum := f.sweep(t); !sum.RateLimited || !sum.More || sum.MeterEvents != 0 || len(s.Received()) != 5 {
			t.Errorf("sweep with 429s = %+v after %d requests, want it stopped after 2 tries", sum, len(s.Received()))
		}
		s.SetFault(nil)
		f.sweep(t)
		f.exact(t, s.Totals(), twoOwners)
	})
}

// TestHangAndServerError: Stripe hangs (the call's deadline ends it) or
// answers 500: the day stays pending, and the next sweep sends the same
// event again.
func TestHangAndServerError(t *testing.T) {
	for _, fault := range []stripetest.Fault{stripetest.Hang, stripetest.ServerError} {
		t.Run(fmt.Sprint(fault), func(t *testing.T) {
			forEachStandIn(t, 300*time.Millisecond, func(t *testing.T, f *fixture, s *stripetest.StandIn) {
				f.link(t, "acme", "cus_Acme1")
				f.traffic(t, "acme", day1, 10)
				s.SetFault(func(int, stripetest.Event) stripetest.Fault { return fault })
				if sum := f.sweep(t); sum.Failed != 1 || sum.MeterEvents != 0 {
					t.Errorf("sweep = %+v, want one failed send", sum)
				}
				x, err := f.st.Exported(context.Background(), "acme", day1, day1)
				if err != nil || len(x) != 1 || x[0].Pending == nil || x[0].Exported != 0 {
					t.Fatalf("Exported = %+v, %v; want the attempt pending", x, err)
				}
				s.SetFault(nil)
				if sum := f.sweep(t); sum.Resent != 1 {
					t.Errorf("next sweep = %+v, want the resend", sum)
				}
				if got := s.Received(); len(got) != 2 || got[0].Identifier != got[1].Identifier {
					t.Errorf("received %+v, want one identifier twice", got)
				}
				f.exact(t, s.Totals(), map[string]string{"acme": "cus_Acme1"})
			})
		})
	}
}

// TestInterruptedSweep: the sweep's context ends during the call to Stripe
// (SIGTERM): Export returns, the attempt stays recorded, and the next
// sweep sends it again under its identifier; nothing is lost or doubled.
func TestInterruptedSweep(t *testing.T) {
	forEachStandIn(t, 0, func(t *testing.T, f *fixture, s *stripetest.StandIn) {
		f.link(t, "acme", "cus_Acme1")
		f.traffic(t, "acme", day1, 10)
		ctx, cancel := context.WithCancel(context.Background())
		s.SetFault(func(n int, _ stripetest.Event) stripetest.Fault {
			cancel() // SIGTERM while Stripe is at it
			return stripetest.Hang
		})
		if _, err := f.ex.Export(ctx, f.clock.Now()); err == nil {
			t.Fatal("an interrupted Export reported no error")
		}
		s.SetFault(nil)
		if sum := f.sweep(t); sum.Resent != 1 || sum.MeterEvents != 1 {
			t.Errorf("next sweep = %+v, want the resend", sum)
		}
		f.exact(t, s.Totals(), map[string]string{"acme": "cus_Acme1"})
	})
}

// TestBounds: a run sends at most MaxSweepMeterEvents and says More; the
// next runs send the rest.
func TestBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	s := stripetest.NewStandIn(t)
	f := newFixture(t, testkit.Stores[0].New(t), s.URL, 0)
	owners := map[string]string{}
	for i := range 10 {
		owner, cus := fmt.Sprintf("owner%d", i), fmt.Sprintf("cus_O%d", i)
		owners[owner] = cus
		f.link(t, owner, cus)
		for d := range 34 {
			f.traffic(t, owner, store.DayOf(f.clock.Now().AddDate(0, 0, -d)), int64(d+1))
		}
	}
	if sum := f.sweep(t); sum.MeterEvents != billing.MaxSweepMeterEvents || !sum.More {
		t.Errorf("first sweep = %+v, want %d events and more", sum, billing.MaxSweepMeterEvents)
	}
	if sum := f.sweep(t); sum.MeterEvents != 340-billing.MaxSweepMeterEvents || sum.More {
		t.Errorf("second sweep = %+v, want the other %d", sum, 340-billing.MaxSweepMeterEvents)
	}
	f.exact(t, s.Totals(), owners)
}

// TestExportRate exports 3 owners × 20 days on the Firestore emulator and
// stripe-mock, and logs the time per meter event (go test -v -run
// TestExportRate ./apikey/billing): one Stripe call and two store
// transactions, one after the other.
func TestExportRate(t *testing.T) {
	base := stripetest.Mock(t)
	f := newFixture(t, testkit.EmulatorStore(t), base, 0)
	owners := map[string]string{}
	for i := range 3 {
		owner, cus := fmt.Sprintf("owner%d", i), fmt.Sprintf("cus_R%d", i)
		owners[owner] = cus
		f.link(t, owner, cus)
		for d := range 20 {
			f.traffic(t, owner, store.DayOf(f.clock.Now().AddDate(0, 0, -d)), int64(100+d))
		}
	}
	start := time.Now()
	sum := f.sweep(t)
	elapsed := time.Since(start)
	if sum.MeterEvents != 60 {
		t.Fatalf("sweep = %+v, want 60 meter events", sum)
	}
	t.Logf("60 meter events in %v: %v each (emulator, stripe-mock, this machine)", elapsed.Round(time.Millisecond), (elapsed / 60).Round(time.Millisecond))
	f.exact(t, f.sent.kept(t), owners)
}

// TestNearDeadline: a run whose deadline is nearer than one call's
// records and sends nothing, says More, and ends without an error.
func TestNearDeadline(t *testing.T) {
	s := stripetest.NewStandIn(t)
	f := newFixture(t, testkit.Stores[0].New(t), s.URL, 10*time.Second)
	f.link(t, "acme", "cus_Acme1")
	f.traffic(t, "acme", day1, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sum, err := f.ex.Export(ctx, f.clock.Now())
	if err != nil || !sum.More || sum.MeterEvents != 0 || len(s.Received()) != 0 {
		t.Errorf("Export near its deadline = %+v, %v; want nothing sent, more", sum, err)
	}
	if x, err := f.st.Exported(context.Background(), "acme", day1, day1); err != nil || len(x) != 0 {
		t.Errorf("Exported = %+v, %v; want no attempt recorded", x, err)
	}
}

// TestStoreAnswerLost: the store applies an export write and loses its
// answer, or drops it: the run ends in an error, sends nothing it has not
// recorded, and the next runs finish the export exactly.
func TestStoreAnswerLost(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*testkit.LostAnswerStore, *stripetest.StandIn)
	}{
		{"BeginExport applied", func(st *testkit.LostAnswerStore, _ *stripetest.StandIn) { st.Lose.Store(1) }},
		{"BeginExport dropped", func(st *testkit.LostAnswerStore, _ *stripetest.StandIn) { st.Drop.Store(1) }},
		{"AdvanceExport applied", func(st *testkit.LostAnswerStore, s *stripetest.StandIn) {
			s.SetFault(func(int, stripetest.Event) stripetest.Fault { st.Lose.Store(1); return stripetest.None })
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := stripetest.NewStandIn(t)
			st := &testkit.LostAnswerStore{Store: memstore.New()}
			f := newFixture(t, st, s.URL, 0)
			f.link(t, "acme", "cus_Acme1")
			f.traffic(t, "acme", day1, 10)
			c.set(st, s)
			if _, err := f.ex.Export(context.Background(), f.clock.Now()); err == nil {
				t.Errorf("an export whose store write failed reported no error")
			}
			s.SetFault(nil)
			f.traffic(t, "acme", day1, 5)
			f.sweep(t)
			keptOnce(t, s.Received())
			f.exact(t, s.Totals(), map[string]string{"acme": "cus_Acme1"})
		})
	}
}
