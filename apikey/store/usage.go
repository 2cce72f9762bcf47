package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// UsageStore keeps the request counts of keys and of their owners: one total
// per key and UTC day, and one per key and UTC month; likewise one per owner
// and UTC day, and one per owner and UTC month. docs/reference.md documents the
// Firestore layout.
type UsageStore interface {
	// AddUsage adds counts to the stored totals, all or none: each count to
	// its key's day and month, and, when its Owner is a valid owner (see
	// UncountedOwners), to its owner's day and month, so that the key and
	// owner totals never disagree about a batch. It applies the batch seq of
	// an instance at most once: called again with a batch it has applied
	// (say, after a timeout hid the outcome), it returns nil and adds
	// nothing. With the counts it records when each key was last used: the
	// time of the call (LastUsed), on the key's document (if the key still
	// exists, and never moving it back), in the same all-or-none write. An
	// instance numbers its batches in increasing order and
	// sends each until it is acknowledged; a batch numbered below the last
	// applied is taken as applied. An error leaves the outcome unknown: the
	// batch may have been applied, and is sent again as it was.
	AddUsage(ctx context.Context, instance string, seq int64, counts []UsageCount) error
	// DailyUsage returns the key's counts for the days from to to (UTC dates,
	// inclusive), oldest first, leaving out days without requests.
	DailyUsage(ctx context.Context, keyID string, from, to Day) ([]DayUsage, error)
	// MonthlyUsage returns the key's total for a UTC month.
	MonthlyUsage(ctx context.Context, keyID string, month Month) (int64, error)
	// OwnerDailyUsage returns the owner's counts, all its keys together, for
	// the days from to to (UTC dates, inclusive), oldest first, leaving out
	// days without requests. An owner that ValidateOwner refuses is an error
	// wrapping ErrInvalidOwner.
	OwnerDailyUsage(ctx context.Context, owner string, from, to Day) ([]DayUsage, error)
	// OwnerMonthlyUsage returns the owner's total, all its keys together,
	// for a UTC month. An owner that ValidateOwner refuses is an error
	// wrapping ErrInvalidOwner.
	OwnerMonthlyUsage(ctx context.Context, owner string, month Month) (int64, error)
}

// MaxUsageBatch is the most counts AddUsage is given at once; every store
// must take that many. A Firestore transaction holds at most 500 writes, and
// a batch of n counts makes at most 5n+1: each count's key day and key month
// (2n), its owner's day and owner's month (2n more when every count has an
// owner of its own; counts of one owner share them, summed before writing),
// its key's last_used_at (n more when every count has a key of its own), and
// the meter document. 5×99+1 = 496.
const MaxUsageBatch = 99

// LastUsed is the last-used time that AddUsage, called at now, records for a
// count: now, the time of the flush, which trails the count's last request
// by up to the meter's flush interval; but for a count written after its
// day (a batch retried for long, or replayed), the last instant of its UTC
// day, so that a late write never claims a use that did not happen then.
func LastUsed(c UsageCount, now time.Time) time.Time {
	now = StoredTime(now)
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
func LastUsedByKey(counts []UsageCount, now time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(counts))
	for _, c := range counts {
		if t := LastUsed(c, now); t.After(out[c.KeyID]) {
			out[c.KeyID] = t
		}
	}
	return out
}

// UsageCount is a number of requests of a key on a day.
type UsageCount struct {
	KeyID    string `json:"key_id"`
	Day      Day    `json:"day"`
	Requests int64  `json:"requests"`
	// Owner is the key's owner. Empty (a caller from before owners had
	// usage) or an owner that ValidateOwner refuses, the count adds to the
	// key's totals only.
	Owner string `json:"owner,omitempty"`
}

// UncountedOwners returns the distinct non-empty owners of counts, in the
// order they first appear, that AddUsage adds to their keys' totals but not
// to any owner's: those that ValidateOwner refuses, which cannot name a
// Firestore document (a key document written by other means may hold one).
// Such counts are not refused, lest one bad key document keep a whole batch
// from ever being written; the caller logs these owners instead.
func UncountedOwners(counts []UsageCount) []string {
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
		Day   Day
	}
	OwnerMonth struct {
		Owner string
		Month Month
	}
)

// OwnerTotals sums the counts of each counted owner per day and per month:
// what a batch adds to the owners' documents, one write each.
func OwnerTotals(counts []UsageCount) (days map[OwnerDay]int64, months map[OwnerMonth]int64) {
	days, months = map[OwnerDay]int64{}, map[OwnerMonth]int64{}
	for _, c := range counts {
		if ownerCounted(c.Owner) {
			days[OwnerDay{c.Owner, c.Day}] += c.Requests
			months[OwnerMonth{c.Owner, c.Day.Month()}] += c.Requests
		}
	}
	return days, months
}

// DayUsage is a key's request count on one day.
type DayUsage struct {
	Day      Day   `json:"day"`
	Requests int64 `json:"requests"`
}

// Day is a UTC calendar day, written YYYY-MM-DD.
type Day string

// Month is a UTC calendar month, written YYYY-MM.
type Month string

// DayOf returns t's UTC day.
func DayOf(t time.Time) Day { return Day(t.UTC().Format(time.DateOnly)) }

// MonthOf returns t's UTC month.
func MonthOf(t time.Time) Month { return Month(t.UTC().Format("2006-01")) }

// Month returns the month of d.
func (d Day) Month() Month { return Month(d[:7]) }

// ParseDay parses a YYYY-MM-DD date.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return "", err
	}
	return DayOf(t), nil
}

// ParseMonth parses a YYYY-MM month.
func ParseMonth(s string) (Month, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return "", err
	}
	return MonthOf(t), nil
}

// MaxUsageDays is the longest range of days a usage report covers.
const MaxUsageDays = 92

// Errors of UsageRange, inside a *DayRangeError.
var (
	ErrNotADate      = errors.New("not a date YYYY-MM-DD")
	ErrRangeReversed = errors.New("to is before from")
	ErrRangeTooLong  = fmt.Errorf("the range is longer than %d days", MaxUsageDays)
)

// DayRangeError is a bad from or to of a usage report: Field is "from" or
// "to", Value what was given.
type DayRangeError struct {
	Field, Value string
	Err          error
}

func (e *DayRangeError) Error() string { return e.Field + " " + e.Value + ": " + e.Err.Error() }
func (e *DayRangeError) Unwrap() error { return e.Err }

// UsageRange parses the days of a usage report: from and to as YYYY-MM-DD,
// by default the first of now's UTC month and now's UTC day; to not before
// from, and at most MaxUsageDays days in all. A range error comes with the
// days as parsed.
func UsageRange(fromText, toText string, now time.Time) (from, to Day, err error) {
	from, to = Day(string(MonthOf(now))+"-01"), DayOf(now)
	for _, p := range []struct {
		field, text string
		dst         *Day
	}{{"from", fromText, &from}, {"to", toText, &to}} {
		if p.text == "" {
			continue
		}
		d, err := ParseDay(p.text)
		if err != nil {
			return "", "", &DayRangeError{p.field, p.text, ErrNotADate}
		}
		*p.dst = d
	}
	fromT, _ := time.Parse(time.DateOnly, string(from))
	toT, _ := time.Parse(time.DateOnly, string(to))
	switch {
	case to < from:
		return from, to, &DayRangeError{"to", string(to), ErrRangeReversed}
	case toT.Sub(fromT) >= MaxUsageDays*24*time.Hour:
		return from, to, &DayRangeError{"to", string(to), ErrRangeTooLong}
	}
	return from, to, nil
}

// NextMonth returns the start of the UTC month after t's.
func NextMonth(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
}
