package keygate

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestUsageStoreContract(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			ctx := context.Background()
			s := impl.new(t)
			a, b := keyformat.ID("a"), keyformat.ID("b")
			batch1 := []store.UsageCount{{KeyID: a, Day: "2026-11-29", Requests: 3}, {KeyID: a, Day: "2026-11-30", Requests: 4},
				{KeyID: b, Day: "2026-11-30", Requests: 1}}
			if err := s.AddUsage(ctx, "i1", 1, batch1); err != nil {
				t.Fatal(err)
			}
			if err := s.AddUsage(ctx, "i1", 1, batch1); err != nil { // a retry of an applied batch
				t.Fatal(err)
			}
			if err := s.AddUsage(ctx, "i2", 1, []store.UsageCount{{KeyID: a, Day: "2026-12-01", Requests: 5},
				{KeyID: a, Day: "2026-11-30", Requests: 10}}); err != nil {
				t.Fatal(err)
			}
			if err := s.AddUsage(ctx, "i1", 2, []store.UsageCount{{KeyID: a, Day: "2026-11-29", Requests: 1}}); err != nil {
				t.Fatal(err)
			}
			days, err := s.DailyUsage(ctx, a, "2026-11-01", "2026-12-31")
			if err != nil {
				t.Fatal(err)
			}
			want := []store.DayUsage{{"2026-11-29", 4}, {"2026-11-30", 14}, {"2026-12-01", 5}}
			if !reflect.DeepEqual(days, want) {
				t.Errorf("DailyUsage = %v, want %v", days, want)
			}
			if days, _ := s.DailyUsage(ctx, a, "2026-11-30", "2026-11-30"); !reflect.DeepEqual(days, []store.DayUsage{{"2026-11-30", 14}}) {
				t.Errorf("DailyUsage of one day = %v", days)
			}
			if days, err := s.DailyUsage(ctx, keyformat.ID("none"), "2026-11-01", "2026-11-30"); err != nil || len(days) != 0 {
				t.Errorf("DailyUsage of an unused key = %v, %v", days, err)
			}
			for _, c := range []struct {
				id    string
				month store.Month
				want  int64
			}{{a, "2026-11", 18}, {a, "2026-12", 5}, {b, "2026-11", 1}, {b, "2026-10", 0}} {
				if n, err := s.MonthlyUsage(ctx, c.id, c.month); err != nil || n != c.want {
					t.Errorf("MonthlyUsage(%s) = %d, %v; want %d", c.month, n, err, c.want)
				}
			}
		})
	}
}

// TestOwnerUsageContract checks the owner totals of every UsageStore: written
// with the key totals, exactly once, per owner.
func TestOwnerUsageContract(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			ctx := context.Background()
			s := impl.new(t)
			a1, a2, g1 := keyformat.ID("acme-1"), keyformat.ID("acme-2"), keyformat.ID("globex-1")
			count := func(id, owner string, day store.Day, n int64) store.UsageCount {
				return store.UsageCount{KeyID: id, Owner: owner, Day: day, Requests: n}
			}
			batch1 := []store.UsageCount{count(a1, "acme", "2026-11-29", 3), count(a1, "acme", "2026-11-30", 4),
				count(a2, "acme", "2026-11-30", 5), count(g1, "globex", "2026-11-30", 1)}
			for range 2 { // the second is a retry of an applied batch
				if err := s.AddUsage(ctx, "i1", 1, batch1); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.AddUsage(ctx, "i2", 1, []store.UsageCount{count(a1, "acme", "2026-12-01", 7),
				count(a2, "acme", "2026-11-29", 2), count(g1, "globex", "2026-12-01", 6)}); err != nil {
				t.Fatal(err)
			}
			if err := s.AddUsage(ctx, "i1", 1, batch1); err != nil { // a late retry, after another instance's batch
				t.Fatal(err)
			}

			checkDays := func(owner string, from, to store.Day, want []store.DayUsage) {
				t.Helper()
				days, err := s.OwnerDailyUsage(ctx, owner, from, to)
				if err != nil || !reflect.DeepEqual(days, want) {
					t.Errorf("OwnerDailyUsage(%s, %s, %s) = %v, %v; want %v", owner, from, to, days, err, want)
				}
			}
			checkMonth := func(owner string, month store.Month, want int64) {
				t.Helper()
				if n, err := s.OwnerMonthlyUsage(ctx, owner, month); err != nil || n != want {
					t.Errorf("OwnerMonthlyUsage(%s, %s) = %d, %v; want %d", owner, month, n, err, want)
				}
			}
			// Two keys of acme add up; globex stays apart.
			checkDays("acme", "2026-11-01", "2026-12-31", []store.DayUsage{{"2026-11-29", 5}, {"2026-11-30", 9}, {"2026-12-01", 7}})
			checkDays("acme", "2026-11-30", "2026-11-30", []store.DayUsage{{"2026-11-30", 9}})
			checkDays("globex", "2026-11-01", "2026-12-31", []store.DayUsage{{"2026-11-30", 1}, {"2026-12-01", 6}})
			checkDays("nobody", "2026-11-01", "2026-12-31", []store.DayUsage{})
			checkMonth("acme", "2026-11", 14)
			checkMonth("acme", "2026-12", 7)
			checkMonth("globex", "2026-11", 1)
			checkMonth("globex", "2026-12", 6)
			checkMonth("nobody", "2026-11", 0)

			// Each owner's totals are the sum of its keys' totals.
			for _, o := range []struct {
				owner string
				keys  []string
			}{{"acme", []string{a1, a2}}, {"globex", []string{g1}}} {
				for _, month := range []store.Month{"2026-11", "2026-12"} {
					var sum int64
					for _, id := range o.keys {
						n, err := s.MonthlyUsage(ctx, id, month)
						if err != nil {
							t.Fatal(err)
						}
						sum += n
					}
					checkMonth(o.owner, month, sum)
				}
			}

			// A count without an owner (an old caller), or with one that cannot
			// name a document, adds to its key only, and the batch is applied.
			bad := "acme/eu"
			if err := s.AddUsage(ctx, "i1", 2, []store.UsageCount{count(a1, "", "2026-11-29", 100),
				count(keyformat.ID("bad"), bad, "2026-11-29", 50), count(a2, "acme", "2026-11-29", 1)}); err != nil {
				t.Fatal(err)
			}
			if n, _ := s.MonthlyUsage(ctx, a1, "2026-11"); n != 107 {
				t.Errorf("MonthlyUsage of the key counted without owner = %d, want 107", n)
			}
			if n, _ := s.MonthlyUsage(ctx, keyformat.ID("bad"), "2026-11"); n != 50 {
				t.Errorf("MonthlyUsage of the key with an invalid owner = %d, want 50", n)
			}
			checkMonth("acme", "2026-11", 15)
			checkDays("acme", "2026-11-29", "2026-11-29", []store.DayUsage{{"2026-11-29", 6}})
			if _, err := s.OwnerMonthlyUsage(ctx, bad, "2026-11"); !errors.Is(err, store.ErrInvalidOwner) {
				t.Errorf("OwnerMonthlyUsage(%q) = %v, want ErrInvalidOwner", bad, err)
			}
			if _, err := s.OwnerDailyUsage(ctx, "", "2026-11-01", "2026-11-30"); !errors.Is(err, store.ErrInvalidOwner) {
				t.Errorf("OwnerDailyUsage of no owner = %v, want ErrInvalidOwner", err)
			}
		})
	}
}

// TestFullBatchOfOwners writes the largest batch with the most writes: every
// count of a key and owner of its own.
func TestFullBatchOfOwners(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			ctx := context.Background()
			s := impl.new(t)
			counts := make([]store.UsageCount, MaxUsageBatch)
			for i := range counts {
				counts[i] = store.UsageCount{KeyID: keyformat.ID(fmt.Sprint("k", i)), Owner: fmt.Sprint("o", i), Day: "2026-11-30", Requests: int64(i + 1)}
			}
			if err := s.AddUsage(ctx, "i1", 1, counts); err != nil {
				t.Fatal(err)
			}
			for _, i := range []int{0, MaxUsageBatch / 2, MaxUsageBatch - 1} {
				if n, err := s.OwnerMonthlyUsage(ctx, counts[i].Owner, "2026-11"); err != nil || n != int64(i+1) {
					t.Errorf("OwnerMonthlyUsage(%s) = %d, %v; want %d", counts[i].Owner, n, err, i+1)
				}
			}
		})
	}
}

func TestMaxUsageBatchFitsATransaction(t *testing.T) {
	// Per count: key day, key month, owner day, owner month; plus the meter.
	if w := 4*MaxUsageBatch + 1; w > 500 || 4*(MaxUsageBatch+1)+1 <= 500 {
		t.Errorf("MaxUsageBatch %d makes up to %d writes: want the largest batch within 500", MaxUsageBatch, w)
	}
}

func TestUncountedOwners(t *testing.T) {
	counts := []store.UsageCount{{KeyID: "a", Owner: "acme"}, {KeyID: "b", Owner: ""}, {KeyID: "c", Owner: "a/b"},
		{KeyID: "d", Owner: "__x__"}, {KeyID: "e", Owner: "a/b"}, {KeyID: "f", Owner: ".."}}
	if got, want := store.UncountedOwners(counts), []string{"a/b", "__x__", ".."}; !reflect.DeepEqual(got, want) {
		t.Errorf("UncountedOwners = %q, want %q", got, want)
	}
	if got := store.UncountedOwners(counts[:2]); got != nil {
		t.Errorf("UncountedOwners of valid and empty owners = %q, want none", got)
	}
}
