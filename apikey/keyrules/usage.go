package keyrules

import (
	"slices"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// LastUsed is the last-used time that AddUsage, called at now, records for a
// count: now, the time of the flush, which trails the count's last request
// by up to the meter's flush interval; but for a count written after its
// day (a batch retried for long, or replayed), the last instant of its UTC
// day, so that a late write never claims a use that did not happen then.
func LastUsed(c store.UsageCount, now time.Time) time.Time {
	now = store.StoredTime(now)
	end, err := time.Parse(time.DateOnly, string(c.Day))
	if err != nil {
		return now
	}
	if end = end.AddDate(0, 0, 1).Add(-time.Microsecond); end.Before(now) {
		return end
	}
	return now
}

// LastUsedByKey is the last-used time of each key of counts, AddUsage called
// at now: the latest LastUsed of its counts.
func LastUsedByKey(counts []store.UsageCount, now time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(counts))
	for _, c := range counts {
		if t := LastUsed(c, now); t.After(out[c.KeyID]) {
			out[c.KeyID] = t
		}
	}
	return out
}

// UncountedOwners returns the distinct non-empty owners of counts, in the
// order they first appear, that AddUsage adds to their keys' totals but not
// to any owner's: those that ValidateOwner refuses, which cannot name a
// Firestore document (a key document written by other means may hold one).
// Such counts are not refused, lest one bad key document keep a whole batch
// from ever being written; the caller logs these owners instead.
func UncountedOwners(counts []store.UsageCount) []string {
	var out []string
	for _, c := range counts {
		if c.Owner != "" && !slices.Contains(out, c.Owner) && !ownerCounted(c.Owner) {
			out = append(out, c.Owner)
		}
	}
	return out
}

// ownerCounted tells whether AddUsage adds a count of owner to the owner's
// totals.
func ownerCounted(owner string) bool { return owner != "" && ValidateOwner(owner) == nil }

// OwnerDay and OwnerMonth name an owner's totals of a day and of a month.
type (
	OwnerDay struct {
		Owner string
		Day   store.Day
	}
	OwnerMonth struct {
		Owner string
		Month store.Month
	}
)

// OwnerTotals sums the counts of each counted owner per day and per month:
// what a batch adds to the owners' documents, one write each.
func OwnerTotals(counts []store.UsageCount) (days map[OwnerDay]int64, months map[OwnerMonth]int64) {
	days, months = map[OwnerDay]int64{}, map[OwnerMonth]int64{}
	for _, c := range counts {
		if ownerCounted(c.Owner) {
			days[OwnerDay{c.Owner, c.Day}] += c.Requests
			months[OwnerMonth{c.Owner, c.Day.Month()}] += c.Requests
		}
	}
	return days, months
}

// NextMonth returns the start of the UTC month after t's: when a monthly
// quota counted in t's month starts again.
func NextMonth(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
}
