package store_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

func TestMaxUsageBatchFitsATransaction(t *testing.T) {
	// Per count: key day, key month, owner day, owner month, the key's
	// last_used_at; plus the meter.
	if w := 5*store.MaxUsageBatch + 1; w > 500 || 5*(store.MaxUsageBatch+1)+1 <= 500 {
		t.Errorf("MaxUsageBatch %d makes up to %d writes: want the largest batch within 500", store.MaxUsageBatch, w)
	}
}

// TestLastUsed: the flush time, but never after the count's UTC day; the
// latest of a key's counts.
func TestLastUsed(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 123456789, time.UTC)
	endOf29 := time.Date(2026, 11, 29, 23, 59, 59, 999999000, time.UTC)
	for _, c := range []struct {
		day  store.Day
		want time.Time
	}{
		{"2026-11-30", now.Truncate(time.Microsecond)},
		{"2026-12-01", now.Truncate(time.Microsecond)}, // a clock behind the meter's: still now
		{"2026-11-29", endOf29},                        // written late: the end of its day
	} {
		if got := store.LastUsed(store.UsageCount{KeyID: "a", Day: c.day}, now); !got.Equal(c.want) {
			t.Errorf("LastUsed of a count of %s at %v = %v, want %v", c.day, now, got, c.want)
		}
	}
	got := store.LastUsedByKey([]store.UsageCount{{KeyID: "a", Day: "2026-11-29"}, {KeyID: "a", Day: "2026-11-30"}, {KeyID: "b", Day: "2026-11-28"}}, now)
	if !got["a"].Equal(now.Truncate(time.Microsecond)) || !got["b"].Equal(endOf29.AddDate(0, 0, -1)) || len(got) != 2 {
		t.Errorf("LastUsedByKey = %v", got)
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
		{"2026-08-01", "2026-11-01", "2026-08-01", "2026-11-01", "to", store.ErrRangeTooLong},
		{"2026-11-28", "", "2026-11-28", "2026-11-27", "to", store.ErrRangeReversed},
		{"yesterday", "", "", "", "from", store.ErrNotADate},
		{"", "2026-13-01", "", "", "to", store.ErrNotADate},
		{"2026-11-1", "", "", "", "from", store.ErrNotADate},
	} {
		from, to, err := store.UsageRange(c.from, c.to, now)
		if from != c.wantFrom || to != c.wantTo {
			t.Errorf("UsageRange(%q, %q) = %s to %s, want %s to %s", c.from, c.to, from, to, c.wantFrom, c.wantTo)
		}
		if c.err == nil {
			if err != nil {
				t.Errorf("UsageRange(%q, %q) = %v", c.from, c.to, err)
			}
			continue
		}
		re, ok := errors.AsType[*store.DayRangeError](err)
		if !ok || re.Field != c.field || !errors.Is(err, c.err) {
			t.Errorf("UsageRange(%q, %q) = %v, want %v on %s", c.from, c.to, err, c.err, c.field)
		}
	}
}
