package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/events"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/apikey/storetest"
	"github.com/keygate/keygate/internal/testkit"
)

// recorder is a Publisher that keeps what it is sent, or fails.
type recorder struct {
	mu   sync.Mutex
	sent []store.Event
	fail error
}

func (r *recorder) Publish(ctx context.Context, evs []store.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.sent = append(r.sent, evs...)
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, ev := range r.sent {
		ids = append(ids, ev.ID)
	}
	return ids
}

// revokeWith revokes a new key of acme in s as w, and returns the outbox.
func revokeWith(t *testing.T, s store.Store, w events.Writer) *store.Outbox {
	t.Helper()
	_, k := storetest.MintKey(t, s, "acme")
	o := w.Outbox()
	if _, err := s.Revoke(store.WithOutbox(context.Background(), o), k.ID, testkit.T0); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestDeliverThenSweep(t *testing.T) {
	clock := testkit.NewFakeClock()
	s := memstore.New()
	w := events.Writer{Actor: events.Actor{Type: events.ActorCLI}, Reason: events.ReasonCLI, Now: clock.Now}
	down := &recorder{fail: errors.New("unavailable")}
	o := revokeWith(t, s, w)
	if err := events.Deliver(t.Context(), s, down, o, clock.Now()); err == nil {
		t.Fatal("Deliver to a publisher that fails: no error")
	}
	up := &recorder{}
	if sum, err := events.Sweep(t.Context(), s, up, clock.Now()); err != nil || sum.Published != 0 {
		t.Errorf("a sweep within SweepAge = %+v, %v; want nothing published", sum, err)
	}
	clock.Advance(events.SweepAge)
	evs, _ := o.Events()
	for range 2 {
		if _, err := events.Sweep(t.Context(), s, up, clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := up.ids(); !slices.Equal(got, []string{evs[0].ID}) {
		t.Errorf("two sweeps published %v, want the one event %s once", got, evs[0].ID)
	}
	o = revokeWith(t, s, w)
	if err := events.Deliver(t.Context(), s, up, o, clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if sum, _ := events.Sweep(t.Context(), s, up, clock.Now()); sum.Published != 0 {
		t.Errorf("a sweep after a Deliver published %d, want 0", sum.Published)
	}
}

// TestDeliverInDoubt: a write whose answer was lost publishes only the
// events the store holds.
func TestDeliverInDoubt(t *testing.T) {
	s := memstore.New()
	w := events.Writer{Actor: events.Actor{Type: events.ActorCLI}}
	for _, c := range []struct {
		name    string
		applied bool
	}{
		{"applied, answer lost", true},
		{"not applied, answer lost", false},
	} {
		lossy := &testkit.LostAnswerStore{Store: s}
		if c.applied {
			lossy.Lose.Store(1)
		} else {
			lossy.Drop.Store(1)
		}
		_, k := storetest.MintKey(t, s, "acme")
		o := w.Outbox()
		confirmed := store.ConfirmWrites(lossy, time.Second)
		_, err := confirmed.Revoke(store.WithOutbox(context.Background(), o), k.ID, testkit.T0)
		if (err == nil) != c.applied {
			t.Fatalf("%s: Revoke = %v", c.name, err)
		}
		if _, doubt := o.Events(); !doubt {
			t.Errorf("%s: the outbox is not in doubt", c.name)
		}
		if err != nil {
			continue // not published: the write failed
		}
		r := &recorder{}
		if err := events.Deliver(t.Context(), s, r, o, testkit.T0); err != nil || len(r.ids()) != 1 {
			t.Errorf("%s: Deliver = %v, published %v; want the stored event", c.name, err, r.ids())
		}
	}
}

// TestSweepsAtOnce: two sweeps at once record one notice per key.
func TestSweepsAtOnce(t *testing.T) {
	s := memstore.New()
	for range 30 {
		storetest.MintKey(t, s, "acme", func(k *store.Key) { k.ExpiresAt = testkit.T0.Add(3 * 24 * time.Hour) })
	}
	r := &recorder{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { events.Sweep(t.Context(), s, r, testkit.T0) })
	}
	wg.Wait()
	if n := len(r.ids()); n != 30 {
		t.Errorf("two sweeps at once published %d notices, want 30", n)
	}
}

// TestRender: each fact's data, in the documented format.
func TestRender(t *testing.T) {
	_, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", Name: "ci", Scopes: []string{"a"}, CreatedAt: testkit.T0})
	if err != nil {
		t.Fatal(err)
	}
	k = store.Stored(k)
	w := events.Writer{Actor: events.Actor{Type: events.ActorKey, KeyID: "caller"}, Reason: events.ReasonAPI, Now: func() time.Time { return testkit.T0 }}
	key := `{"id":"` + k.ID + `","hint":"` + k.Hint + `","name":"ci","owner":"acme","scopes":["a"],"created_at":"2026-11-27T12:00:00Z"}`
	for _, c := range []struct {
		fact       store.Fact
		typ, want  string
		wantSubjet string
	}{
		{store.Fact{Kind: store.FactRevoked, Key: k}, events.TypeKeyRevoked,
			`{"key":` + key + `,"actor":{"type":"key","key_id":"caller"},"reason":"api"}`, "acme"},
		{store.Fact{Kind: store.FactPlan, Owner: "acme", Plan: &store.Plan{Owner: "acme", MonthlyQuota: 100}}, events.TypePlanChanged,
			`{"owner":"acme","plan":{"rate_limit":0,"burst":0,"monthly_quota":100,"max_keys":0},"actor":{"type":"key","key_id":"caller"}}`, "acme"},
		{store.Fact{Kind: store.FactPlan, Owner: "acme"}, events.TypePlanChanged,
			`{"owner":"acme","plan":null,"actor":{"type":"key","key_id":"caller"}}`, "acme"},
		{store.Fact{Kind: store.FactThreshold, Threshold: store.Threshold{Owner: "acme", Month: "2026-01", Quota: 100, Used: 85, Percent: 80}}, events.TypeUsageThreshold,
			`{"owner":"acme","month":"2026-01","quota":100,"used":85,"percent":80}`, "acme"},
	} {
		o := w.Outbox()
		ev, _ := store.Record(store.WithOutbox(context.Background(), o), c.fact)
		if ev.Type != c.typ || ev.Subject != c.wantSubjet || string(ev.Data) != c.want || len(ev.ID) != 32 || !json.Valid(ev.Data) {
			t.Errorf("%s: %s %s %s, want %s %s", c.fact.Kind, ev.Type, ev.Subject, ev.Data, c.typ, c.want)
		}
	}
}
