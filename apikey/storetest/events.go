package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// Events checks EventStore and the outbox: each write made with a
// store.WithOutbox context records exactly the one event of its fact in the
// same write, none when it changes nothing or fails, none without an
// Outbox; Unpublished, MarkPublished and GetEvent; Expiring and
// NoteExpiry, once per key and notice.
func Events(t *testing.T, newStore NewStore) { runCases(t, newStore, eventCases) }

// outbox returns ctx with a fresh Outbox whose events name the fact's kind
// as their type, at T0, under id.
func outbox(id string) (context.Context, *store.Outbox) {
	o := store.NewOutbox(func(f store.Fact) store.Event {
		data, _ := json.Marshal(map[string]string{"key": f.Key.ID, "replacement": f.Replacement.ID, "notice": f.Notice})
		subject := f.Key.Owner
		if f.Kind == store.FactPlan {
			subject = f.Owner
		}
		return store.Event{ID: id, Type: string(f.Kind), Subject: subject, Time: T0, Data: data}
	})
	return store.WithOutbox(context.Background(), o), o
}

// recorded checks that o holds one event of kind and returns it.
func recorded(t *testing.T, o *store.Outbox, kind store.FactKind) store.Event {
	t.Helper()
	evs, _ := o.Events() // in doubt behind store.ConfirmWrites after a lost answer
	if len(evs) != 1 || evs[0].Type != string(kind) {
		t.Fatalf("outbox holds %+v, want one %s event", evs, kind)
	}
	return evs[0]
}

// unpublished returns the IDs of the store's unpublished events.
func unpublished(t *testing.T, s store.Store) []string {
	t.Helper()
	evs, err := s.Unpublished(context.Background(), T0.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.ID)
	}
	slices.Sort(ids)
	return ids
}

var eventCases = []contractCase{
	{"every fact records its one event, with the write", func(t *testing.T, s store.Store) {
		bg := context.Background()
		var want []string
		write := func(id string, kind store.FactKind, f func(ctx context.Context) error) store.Event {
			t.Helper()
			ctx, o := outbox(id)
			if err := f(ctx); err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			want = append(want, id)
			ev := recorded(t, o, kind)
			got, err := s.GetEvent(bg, id)
			if err != nil || got.ID != id || got.Type != ev.Type || got.Subject != ev.Subject || !got.Time.Equal(T0) || string(got.Data) != string(ev.Data) {
				t.Fatalf("GetEvent(%s) = %+v, %v; want %+v", id, got, err, ev)
			}
			return ev
		}
		k := unstored(t, "acme")
		write("e1", store.FactCreated, func(ctx context.Context) error { return s.Create(ctx, k) })
		capped := unstored(t, "acme")
		write("e2", store.FactCreated, func(ctx context.Context) error { return s.CreateCapped(ctx, capped, 10, T0) })
		repl := unstored(t, "acme")
		ev := write("e3", store.FactRotated, func(ctx context.Context) error {
			_, err := s.RotateCapped(ctx, k.ID, repl, T0.Add(time.Hour), 10)
			return err
		})
		var data map[string]string
		if json.Unmarshal(ev.Data, &data); data["key"] != k.ID || data["replacement"] != repl.ID {
			t.Errorf("rotation's fact = %s, want key %s and replacement %s", ev.Data, k.ID, repl.ID)
		}
		write("e4", store.FactRevoked, func(ctx context.Context) error { _, err := s.Revoke(ctx, repl.ID, T0); return err })
		write("e5", store.FactLeaked, func(ctx context.Context) error {
			_, err := s.RecordLeak(ctx, capped.ID, T0, "https://github.com/o/r/blob/x")
			return err
		})
		write("e6", store.FactDeleted, func(ctx context.Context) error { return s.Delete(ctx, capped.ID) })
		write("e7", store.FactPlan, func(ctx context.Context) error { return s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 5}) })
		write("e8", store.FactPlan, func(ctx context.Context) error { return s.DeletePlan(ctx, "acme") })
		if got := unpublished(t, s); !slices.Equal(got, want) {
			t.Errorf("Unpublished = %v, want %v", got, want)
		}
	}},
	{"a write that changes nothing or fails records none", func(t *testing.T, s store.Store) {
		_, k := MintKey(t, s, "acme")
		none := func(name string, f func(ctx context.Context) error) {
			t.Helper()
			ctx, o := outbox(name)
			// A write that fails may leave its attempt's event in the
			// Outbox (Events is read only after a success), not in the store.
			err := f(ctx)
			if evs, _ := o.Events(); err == nil && len(evs) != 0 {
				t.Errorf("%s recorded %+v", name, evs)
			}
			if _, err := s.GetEvent(context.Background(), name); !errors.Is(err, store.ErrEventNotFound) {
				t.Errorf("%s: GetEvent = %v, want ErrEventNotFound", name, err)
			}
		}
		none("create-taken", func(ctx context.Context) error { return s.Create(ctx, k) })
		none("capped-at-cap", func(ctx context.Context) error {
			other := unstored(t, "acme")
			return s.CreateCapped(ctx, other, 1, T0)
		})
		none("revoke-missing", func(ctx context.Context) error { _, err := s.Revoke(ctx, "nope", T0); return err })
		none("delete-plan-missing", func(ctx context.Context) error { return s.DeletePlan(ctx, "acme") })
		ctx, _ := outbox("leak")
		if _, err := s.RecordLeak(ctx, k.ID, T0, "https://a"); err != nil {
			t.Fatal(err)
		}
		none("leak-again", func(ctx context.Context) error { _, err := s.RecordLeak(ctx, k.ID, T0, "https://b"); return err })
		ctx, _ = outbox("revoke")
		if _, err := s.Revoke(ctx, k.ID, T0); err != nil {
			t.Fatal(err)
		}
		none("revoke-again", func(ctx context.Context) error { _, err := s.Revoke(ctx, k.ID, T0); return err })
		none("rotate-revoked", func(ctx context.Context) error {
			repl := unstored(t, "acme")
			_, err := s.Rotate(ctx, k.ID, repl, T0)
			return err
		})
		if got := unpublished(t, s); !slices.Equal(got, []string{"leak", "revoke"}) {
			t.Errorf("Unpublished = %v, want [leak revoke]", got)
		}
	}},
	{"without an Outbox nothing is recorded", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, k := MintKey(t, s, "acme")
		if _, err := s.Revoke(ctx, k.ID, T0); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 5}); err != nil {
			t.Fatal(err)
		}
		if got := unpublished(t, s); len(got) != 0 {
			t.Errorf("Unpublished = %v, want none", got)
		}
	}},
	{"Unpublished is by time, oldest first, and MarkPublished leaves events out", func(t *testing.T, s store.Store) {
		bg := context.Background()
		var ids []string
		for i, at := range []time.Time{T0.Add(2 * time.Minute), T0, T0.Add(time.Minute)} {
			id := string(rune('a' + i))
			o := store.NewOutbox(func(f store.Fact) store.Event {
				return store.Event{ID: id, Type: "created", Subject: "acme", Time: at, Data: json.RawMessage(`{}`)}
			})
			k := unstored(t, "acme")
			if err := s.Create(store.WithOutbox(bg, o), k); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		page := func(before time.Time, limit int) []string {
			t.Helper()
			evs, err := s.Unpublished(bg, before, limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range evs {
				got = append(got, ev.ID)
			}
			return got
		}
		if got := page(T0.Add(time.Minute), 10); !slices.Equal(got, []string{"b", "c"}) {
			t.Errorf("Unpublished(T0+1m) = %v, want [b c]", got)
		}
		if got := page(T0.Add(time.Hour), 2); !slices.Equal(got, []string{"b", "c"}) {
			t.Errorf("Unpublished(limit 2) = %v, want [b c]", got)
		}
		if err := s.MarkPublished(bg, []string{"b", "unknown"}, T0); err != nil {
			t.Fatal(err)
		}
		if got := page(T0.Add(time.Hour), 10); !slices.Equal(got, []string{"c", "a"}) {
			t.Errorf("Unpublished after MarkPublished(b) = %v, want [c a]", got)
		}
		if ev, err := s.GetEvent(bg, "b"); err != nil || ev.ID != "b" {
			t.Errorf("GetEvent of a published event = %+v, %v", ev, err)
		}
	}},
	{"expiry notices are recorded once per key and notice", func(t *testing.T, s store.Store) {
		bg := context.Background()
		_, soon := MintKey(t, s, "acme", func(k *store.Key) { k.ExpiresAt = T0.Add(3 * 24 * time.Hour) })
		_, later := MintKey(t, s, "acme", func(k *store.Key) { k.ExpiresAt = T0.Add(5 * 24 * time.Hour) })
		_, revoked := MintKey(t, s, "acme", func(k *store.Key) { k.ExpiresAt = T0.Add(24 * time.Hour) })
		MintKey(t, s, "acme", func(k *store.Key) { k.ExpiresAt = T0.Add(30 * 24 * time.Hour) })
		MintKey(t, s, "acme")
		if _, err := s.Revoke(bg, revoked.ID, T0); err != nil {
			t.Fatal(err)
		}
		expiring := func() map[string]string {
			t.Helper()
			got := map[string]string{}
			after := ""
			for range 10 {
				page, next, err := s.Expiring(bg, T0, T0.Add(7*24*time.Hour), after, 1)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page {
					got[e.Key.ID] = e.Notice
				}
				if after = next; next == "" {
					return got
				}
			}
			t.Fatal("Expiring pages never end")
			return nil
		}
		if got := expiring(); len(got) != 2 || got[soon.ID] != "" || got[later.ID] != "" {
			t.Errorf("Expiring = %v, want the two active keys expiring within 7 days, no notice", got)
		}
		note := func(id, notice string, want bool) {
			t.Helper()
			ctx, o := outbox(id + notice)
			noted, err := s.NoteExpiry(ctx, id, notice)
			evs, _ := o.Events()
			if err != nil || noted != want || len(evs) != map[bool]int{true: 1}[want] {
				t.Errorf("NoteExpiry(%s) = %v, %v with %d events; want %v", notice, noted, err, len(evs), want)
			}
		}
		note(soon.ID, "7d", true)
		note(soon.ID, "7d", false)
		note(soon.ID, "1d", true)
		note(soon.ID, "7d", false)
		note(later.ID, "1d", true)
		note(later.ID, "7d", false)
		note(revoked.ID, "1d", false)
		note("nope", "1d", false)
		if got := expiring(); got[soon.ID] != "1d" || got[later.ID] != "1d" {
			t.Errorf("Expiring = %v, want both keys at notice 1d", got)
		}
	}},
	{"a usage batch records each quota threshold it reaches, once a month", func(t *testing.T, s store.Store) {
		_, k := MintKey(t, s, "acme")
		seq := int64(0)
		add := func(n int64, owner, key int64) []string {
			t.Helper()
			seq++
			o := store.NewOutbox(func(f store.Fact) store.Event {
				th := f.Threshold
				id := th.Owner + "/" + th.KeyID + "/" + string(th.Month) + "/" + strconv.Itoa(th.Percent) + "/" + strconv.FormatInt(th.Used, 10)
				return store.Event{ID: strings.ReplaceAll(id, "/", "_"), Type: id, Subject: th.Owner, Time: T0, Data: json.RawMessage(`{}`)}
			})
			c := count(k.ID, "acme", "2026-11-27", n)
			c.OwnerQuota, c.KeyQuota = owner, key
			if err := s.AddUsage(store.WithOutbox(context.Background(), o), "i", seq, []store.UsageCount{c}); err != nil {
				t.Fatal(err)
			}
			evs, _ := o.Events()
			var got []string
			for _, ev := range evs {
				got = append(got, ev.Type)
			}
			slices.Sort(got)
			return got
		}
		if got := add(79, 100, 0); len(got) != 0 {
			t.Errorf("79 of 100: %v, want none", got)
		}
		if got := add(6, 100, 0); !slices.Equal(got, []string{"acme//2026-11/80/85"}) {
			t.Errorf("85 of 100: %v, want the owner's 80 %%", got)
		}
		if got := add(20, 100, 50); !slices.Equal(got, []string{"acme//2026-11/100/105", "acme/" + k.ID + "/2026-11/100/105", "acme/" + k.ID + "/2026-11/80/105"}) {
			t.Errorf("105 of 100, the key's quota 50: %v", got)
		}
		if got := add(5, 100, 50); len(got) != 0 {
			t.Errorf("110: %v, want none", got)
		}
		c := count(k.ID, "acme", "2026-11-27", 500)
		c.OwnerQuota = 100
		if err := s.AddUsage(context.Background(), "j", 1, []store.UsageCount{c}); err != nil {
			t.Fatal(err)
		}
		if got := unpublished(t, s); len(got) != 4 {
			t.Errorf("events stored %v, want the 4 thresholds (and none without an Outbox)", got)
		}
	}},
}
