package keyrules

import (
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

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
func UsageRange(fromText, toText string, now time.Time) (from, to store.Day, err error) {
	from, to = store.Day(string(store.MonthOf(now))+"-01"), store.DayOf(now)
	for _, p := range []struct {
		field, text string
		dst         *store.Day
	}{{"from", fromText, &from}, {"to", toText, &to}} {
		if p.text == "" {
			continue
		}
		d, err := store.ParseDay(p.text)
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
