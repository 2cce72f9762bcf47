package keyrules_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

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
		if got := keyrules.LastUsed(store.UsageCount{KeyID: "a", Day: c.day}, now); !got.Equal(c.want) {
			t.Errorf("LastUsed of a count of %s at %v = %v, want %v", c.day, now, got, c.want)
		}
	}
	got := keyrules.LastUsedByKey([]store.UsageCount{{KeyID: "a", Day: "2026-11-29"}, {KeyID: "a", Day: "2026-11-30"}, {KeyID: "b", Day: "2026-11-28"}}, now)
	if !got["a"].Equal(now.Truncate(time.Microsecond)) || !got["b"].Equal(endOf29.AddDate(0, 0, -1)) || len(got) != 2 {
		t.Errorf("LastUsedByKey = %v", got)
	}
}

func TestUncountedOwners(t *testing.T) {
	counts := []store.UsageCount{{KeyID: "a", Owner: "acme"}, {KeyID: "b", Owner: ""}, {KeyID: "c", Owner: "a/b"},
		{KeyID: "d", Owner: "__x__"}, {KeyID: "e", Owner: "a/b"}, {KeyID: "f", Owner: ".."}}
	if got, want := keyrules.UncountedOwners(counts), []string{"a/b", "__x__", ".."}; !reflect.DeepEqual(got, want) {
		t.Errorf("UncountedOwners = %q, want %q", got, want)
	}
	if got := keyrules.UncountedOwners(counts[:2]); got != nil {
		t.Errorf("UncountedOwners of valid and empty owners = %q, want none", got)
	}
}
