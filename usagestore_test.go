package keygate

import (
	"context"
	"reflect"
	"testing"
)

func TestUsageStoreContract(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			ctx := context.Background()
			s := impl.new(t)
			a, b := KeyID("a"), KeyID("b")
			batch1 := []UsageCount{{a, "2026-11-29", 3}, {a, "2026-11-30", 4}, {b, "2026-11-30", 1}}
			if err := s.AddUsage(ctx, "i1", 1, batch1); err != nil {
				t.Fatal(err)
			}
			if err := s.AddUsage(ctx, "i1", 1, batch1); err != nil { // a retry of an applied batch
				t.Fatal(err)
			}
			if err := s.AddUsage(ctx, "i2", 1, []UsageCount{{a, "2026-12-01", 5}, {a, "2026-11-30", 10}}); err != nil {
				t.Fatal(err)
			}
			if err := s.AddUsage(ctx, "i1", 2, []UsageCount{{a, "2026-11-29", 1}}); err != nil {
				t.Fatal(err)
			}
			days, err := s.DailyUsage(ctx, a, "2026-11-01", "2026-12-31")
			if err != nil {
				t.Fatal(err)
			}
			want := []DayUsage{{"2026-11-29", 4}, {"2026-11-30", 14}, {"2026-12-01", 5}}
			if !reflect.DeepEqual(days, want) {
				t.Errorf("DailyUsage = %v, want %v", days, want)
			}
			if days, _ := s.DailyUsage(ctx, a, "2026-11-30", "2026-11-30"); !reflect.DeepEqual(days, []DayUsage{{"2026-11-30", 14}}) {
				t.Errorf("DailyUsage of one day = %v", days)
			}
			if days, err := s.DailyUsage(ctx, KeyID("none"), "2026-11-01", "2026-11-30"); err != nil || len(days) != 0 {
				t.Errorf("DailyUsage of an unused key = %v, %v", days, err)
			}
			for _, c := range []struct {
				id    string
				month Month
				want  int64
			}{{a, "2026-11", 18}, {a, "2026-12", 5}, {b, "2026-11", 1}, {b, "2026-10", 0}} {
				if n, err := s.MonthlyUsage(ctx, c.id, c.month); err != nil || n != c.want {
					t.Errorf("MonthlyUsage(%s) = %d, %v; want %d", c.month, n, err, c.want)
				}
			}
		})
	}
}
