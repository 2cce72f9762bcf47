package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/store"
)

// Changes checks ChangeStore: that each write that changes a key or a plan
// records exactly one change and nothing else records any, the zero
// cursor's present, the order, the limit, and that concurrent writes are
// each read once.
func Changes(t *testing.T, newStore NewStore) { runCases(t, newStore, changeCases) }

// present returns the cursor of the present.
func present(t *testing.T, s store.ChangeStore) store.ChangeCursor {
	t.Helper()
	changes, c, err := s.Changes(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 || c == "" {
		t.Fatalf("Changes from the zero cursor = %v, cursor %q; want none and a cursor", changes, c)
	}
	return c
}

// allAfter reads every change after c, limit at a time, and returns them
// and the last cursor.
func allAfter(t *testing.T, s store.ChangeStore, c store.ChangeCursor, limit int) ([]store.Change, store.ChangeCursor) {
	t.Helper()
	var all []store.Change
	for range 1000 {
		page, next, err := s.Changes(context.Background(), c, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("Changes(limit %d) returned %d changes", limit, len(page))
		}
		if next == "" {
			t.Fatalf("Changes(%q) returned the zero cursor", c)
		}
		all, c = append(all, page...), next
		if len(page) < limit {
			return all, c
		}
	}
	t.Fatal("Changes never returned a short page")
	return nil, ""
}

// change is a change's kind and ID, which the checks compare.
type change struct {
	kind store.ChangeKind
	id   string
}

func (c change) String() string { return fmt.Sprintf("%s %s", c.kind, c.id) }

// kindsAndIDs are the changes without their times, after checking the
// times: set, and never going back.
func kindsAndIDs(t *testing.T, changes []store.Change) []change {
	t.Helper()
	out := []change{}
	for i, c := range changes {
		if c.At.IsZero() || (i > 0 && c.At.Before(changes[i-1].At)) {
			t.Errorf("change %d of %v: At %v unset or before the one before", i, changes, c.At)
		}
		out = append(out, change{c.Kind, c.ID})
	}
	return out
}

// wantChanges checks that the changes after c are want, in order.
func wantChanges(t *testing.T, s store.ChangeStore, c store.ChangeCursor, want ...change) {
	t.Helper()
	got, _ := allAfter(t, s, c, 100)
	if got := kindsAndIDs(t, got); !slices.Equal(got, want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
}

var changeCases = []contractCase{
	{"the zero cursor is the present", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, k := MintKey(t, s, "acme")
		if _, err := s.Revoke(ctx, k.ID, T0); err != nil {
			t.Fatal(err)
		}
		c := present(t, s) // after the revocation
		wantChanges(t, s, c)
		if err := s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 3}); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, s, c, change{store.ChangeOwner, "acme"})
	}},
	{"the zero cursor of an empty feed is before every change", func(t *testing.T, s store.Store) {
		c := present(t, s)
		if err := s.SetPlan(context.Background(), store.Plan{Owner: "acme", MaxKeys: 3}); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, s, c, change{store.ChangeOwner, "acme"})
	}},
	{"each write of a key or a plan records one change", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, revoked := MintKey(t, s, "acme")
		_, rotated := MintKey(t, s, "acme")
		_, cappedRotated := MintKey(t, s, "acme")
		_, deleted := MintKey(t, s, "acme")
		repl, cappedRepl := unstored(t, "acme"), unstored(t, "acme")
		for _, w := range []struct {
			name  string
			write func() error
			want  change
		}{
			{"Revoke", func() error { _, err := s.Revoke(ctx, revoked.ID, T0); return err }, change{store.ChangeKey, revoked.ID}},
			{"Rotate", func() error { _, err := s.Rotate(ctx, rotated.ID, repl, T0); return err }, change{store.ChangeKey, rotated.ID}},
			{"RotateCapped", func() error { _, err := s.RotateCapped(ctx, cappedRotated.ID, cappedRepl, T0, 10); return err }, change{store.ChangeKey, cappedRotated.ID}},
			{"Delete", func() error { return s.Delete(ctx, deleted.ID) }, change{store.ChangeKey, deleted.ID}},
			{"SetPlan, new", func() error { return s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 3}) }, change{store.ChangeOwner, "acme"}},
			{"SetPlan, replacing", func() error { return s.SetPlan(ctx, store.Plan{Owner: "acme", RateLimit: 5}) }, change{store.ChangeOwner, "acme"}},
			{"SetPlan, the same plan", func() error { return s.SetPlan(ctx, store.Plan{Owner: "acme", RateLimit: 5}) }, change{store.ChangeOwner, "acme"}},
			{"DeletePlan", func() error { return s.DeletePlan(ctx, "acme") }, change{store.ChangeOwner, "acme"}},
		} {
			c := present(t, s)
			if err := w.write(); err != nil {
				t.Fatalf("%s: %v", w.name, err)
			}
			got, _ := allAfter(t, s, c, 10)
			if got := kindsAndIDs(t, got); !slices.Equal(got, []change{w.want}) {
				t.Errorf("%s recorded %v, want %v", w.name, got, w.want)
			}
		}
	}},
	{"nothing else records a change", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, revoked := MintKey(t, s, "acme", func(k *store.Key) { k.RevokedAt = T0 })
		_, active := MintKey(t, s, "acme")
		_, taken := MintKey(t, s, "acme")
		c := present(t, s)
		MintKey(t, s, "acme")
		if err := s.CreateCapped(ctx, unstored(t, "acme"), 100, T0); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUsage(ctx, "i", 1, []store.UsageCount{count(active.ID, "acme", "2026-11-27", 1)}); err != nil {
			t.Fatal(err)
		}
		if again, err := s.Revoke(ctx, revoked.ID, T0.Add(time.Hour)); err != nil || !again.RevokedAt.Equal(T0) {
			t.Fatalf("revoking a revoked key = %+v, %v", again, err)
		}
		nope := keyformat.ID("kg_nope")
		// Each of these fails, and so changes nothing.
		fails := map[string]error{}
		_, fails["Revoke of no key"] = s.Revoke(ctx, nope, T0)
		_, fails["Rotate of a revoked key"] = s.Rotate(ctx, revoked.ID, unstored(t, "acme"), T0)
		_, fails["Rotate of no key"] = s.Rotate(ctx, nope, unstored(t, "acme"), T0)
		repl := unstored(t, "acme")
		repl.ID = taken.ID
		_, fails["Rotate onto a taken ID"] = s.Rotate(ctx, active.ID, repl, T0)
		fails["Delete of no key"] = s.Delete(ctx, nope)
		fails["SetPlan of a bad plan"] = s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: -1})
		fails["SetPlan of a bad owner"] = s.SetPlan(ctx, store.Plan{Owner: "acme/eu"})
		fails["DeletePlan of no plan"] = s.DeletePlan(ctx, "acme")
		for name, err := range fails {
			if err == nil {
				t.Errorf("%s succeeded", name)
			}
		}
		s.Get(ctx, active.ID)
		s.ReadKey(ctx, active.ID, "2026-11")
		s.GetPlan(ctx, "acme")
		s.ReadOwner(ctx, "acme", "2026-11")
		s.ListByOwner(ctx, "acme", nil, 10)
		wantChanges(t, s, c)
	}},
	{"changes come oldest first, at most limit at a time", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		var want []change
		var ids []string
		for range 3 {
			_, k := MintKey(t, s, "acme")
			ids = append(ids, k.ID)
		}
		c := present(t, s)
		for i, id := range ids {
			if _, err := s.Revoke(ctx, id, T0); err != nil {
				t.Fatal(err)
			}
			owner := fmt.Sprintf("owner-%d", i)
			if err := s.SetPlan(ctx, store.Plan{Owner: owner, MaxKeys: 2}); err != nil {
				t.Fatal(err)
			}
			want = append(want, change{store.ChangeKey, id}, change{store.ChangeOwner, owner})
		}
		// Pages of 4: 4, then 2, which is short: no more.
		first, next, err := s.Changes(ctx, c, 4)
		if err != nil {
			t.Fatal(err)
		}
		if got := kindsAndIDs(t, first); !slices.Equal(got, want[:4]) {
			t.Errorf("first page of 4 = %v, want %v", got, want[:4])
		}
		second, last, err := s.Changes(ctx, next, 4)
		if err != nil {
			t.Fatal(err)
		}
		if got := kindsAndIDs(t, second); !slices.Equal(got, want[4:]) {
			t.Errorf("second page of 4 = %v, want %v", got, want[4:])
		}
		if second[0].At.Before(first[len(first)-1].At) {
			t.Errorf("the second page starts at %v, before the first ends at %v", second[0].At, first[len(first)-1].At)
		}
		// Pages of 1 give the same, one at a time.
		ones, _ := allAfter(t, s, c, 1)
		if got := kindsAndIDs(t, ones); !slices.Equal(got, want) {
			t.Errorf("pages of 1 = %v, want %v", got, want)
		}
		// A cursor can be read again; the last one, with nothing after it,
		// gives nothing and a cursor that is not before it.
		again, _, err := s.Changes(ctx, next, 4)
		if err != nil || !slices.Equal(kindsAndIDs(t, again), want[4:]) {
			t.Errorf("reading the second page again = %v, %v; want %v", again, err, want[4:])
		}
		none, same, err := s.Changes(ctx, last, 4)
		if err != nil || len(none) != 0 {
			t.Fatalf("after the last change = %v, %v; want none", none, err)
		}
		if err := s.DeletePlan(ctx, "owner-0"); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, s, same, change{store.ChangeOwner, "owner-0"})
	}},
	{"concurrent writes are each read once", func(t *testing.T, s store.Store) {
		// Writers commit while a reader follows the feed in small pages:
		// whatever the interleaving (and commits at the same time), the
		// reader sees every change once.
		ctx := context.Background()
		const writers = 20
		want := make([]string, writers)
		for i := range want {
			_, k := MintKey(t, s, "acme")
			want[i] = k.ID
		}
		c := present(t, s)
		var wg sync.WaitGroup
		for _, id := range want {
			wg.Go(func() {
				if _, err := s.Revoke(ctx, id, T0); err != nil {
					t.Error(err)
				}
			})
		}
		defer wg.Wait() // also when the reader fails
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		var seen []string
		read := func() bool {
			page, next, err := s.Changes(ctx, c, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range page {
				seen = append(seen, ch.ID)
			}
			c = next
			return len(page) == 3
		}
		for following := true; following; {
			select {
			case <-done:
				following = false
			default:
				read()
			}
		}
		for read() {
		}
		slices.Sort(seen)
		slices.Sort(want)
		if !slices.Equal(seen, want) {
			t.Errorf("the reader saw %d changes %v, want each of the %d revocations once %v", len(seen), seen, writers, want)
		}
	}},
	{"a cursor from elsewhere, or a limit below 1, is an error", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for _, c := range []store.ChangeCursor{"not a cursor", "\x00"} {
			if _, _, err := s.Changes(ctx, c, 10); err == nil {
				t.Errorf("Changes(%q) succeeded", c)
			}
		}
		c := present(t, s)
		for _, limit := range []int{0, -1} {
			if _, _, err := s.Changes(ctx, c, limit); err == nil {
				t.Errorf("Changes(limit %d) succeeded", limit)
			}
		}
	}},
}
