package keyrules_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// TestUsageRange checks the days of a usage report: the defaults, the
// bounds of the range, and errors that name the field.
func TestUsageRange(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		from, to         string
		wantFrom, wantTo store.Day
		field            string // of the error; "" for none
		err              error
	}{
		{"", "", "2026-11-01", "2026-11-27", "", nil},
		{"2026-10-01", "", "2026-10-01", "2026-11-27", "", nil},
		{"", "2026-12-31", "2026-11-01", "2026-12-31", "", nil},
		{"2026-11-27", "2026-11-27", "2026-11-27", "2026-11-27", "", nil},
		{"2026-08-01", "2026-10-31", "2026-08-01", "2026-10-31", "", nil}, // MaxUsageDays days
		{"2026-08-01", "2026-11-01", "2026-08-01", "2026-11-01", "to", keyrules.ErrRangeTooLong},
		{"2026-11-28", "", "2026-11-28", "2026-11-27", "to", keyrules.ErrRangeReversed},
		{"yesterday", "", "", "", "from", keyrules.ErrNotADate},
		{"", "2026-13-01", "", "", "to", keyrules.ErrNotADate},
		{"2026-11-1", "", "", "", "from", keyrules.ErrNotADate},
	} {
		from, to, err := keyrules.UsageRange(c.from, c.to, now)
		if from != c.wantFrom || to != c.wantTo {
			t.Errorf("UsageRange(%q, %q) = %s to %s, want %s to %s", c.from, c.to, from, to, c.wantFrom, c.wantTo)
		}
		if c.err == nil {
			if err != nil {
				t.Errorf("UsageRange(%q, %q) = %v", c.from, c.to, err)
			}
			continue
		}
		re, ok := errors.AsType[*keyrules.DayRangeError](err)
		if !ok || re.Field != c.field || !errors.Is(err, c.err) {
			t.Errorf("UsageRange(%q, %q) = %v, want %v on %s", c.from, c.to, err, c.err, c.field)
		}
	}
}
