package store

import (
	"context"
	"time"
)

// UsageStore keeps the request counts of keys and of their owners: one total
// per key and UTC day, and one per key and UTC month; likewise one per owner
// and UTC day, and one per owner and UTC month. docs/reference.md documents the
// Firestore layout.
type UsageStore interface {
	// AddUsage adds counts to the stored totals, all or none: each count to
	// its key's day and month, and, when its Owner is a valid owner (see
	// keyrules.UncountedOwners), to its owner's day and month, so that the key and
	// owner totals never disagree about a batch. It applies the batch seq of
	// an instance at most once: called again with a batch it has applied
	// (say, after a timeout hid the outcome), it returns nil and adds
	// nothing. With the counts it records when each key was last used: the
	// time of the call (keyrules.LastUsed), on the key's document (if the key still
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
	// days without requests. An owner that keyrules.ValidateOwner refuses is an error
	// wrapping ErrInvalidOwner.
	OwnerDailyUsage(ctx context.Context, owner string, from, to Day) ([]DayUsage, error)
	// OwnerMonthlyUsage returns the owner's total, all its keys together,
	// for a UTC month. An owner that keyrules.ValidateOwner refuses is an error
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

// UsageCount is a number of requests of a key on a day.
type UsageCount struct {
	KeyID    string `json:"key_id"`
	Day      Day    `json:"day"`
	Requests int64  `json:"requests"`
	// Owner is the key's owner. Empty (a caller from before owners had
	// usage) or an owner that keyrules.ValidateOwner refuses, the count adds to the
	// key's totals only.
	Owner string `json:"owner,omitempty"`
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

// AppliedReader tells what AddUsage applied of an instance, for a replay of
// its logged batches to check their numbers against (apikey usage replay).
type AppliedReader interface {
	// AppliedSeq returns the seq of the instance's last batch applied: 0 if
	// none is, or the store no longer keeps its record (Firestore's expires
	// 30 days after its last write).
	AppliedSeq(ctx context.Context, instance string) (int64, error)
}
