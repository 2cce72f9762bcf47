package keyrules

import (
	"fmt"
	"math"
	"strconv"

	"github.com/keygate/keygate/apikey/store"
)

// The bounds of a key's limits, shared by the API, the CLI and the
// configuration. A rate below MinRateLimit would make a bucket take hours to
// earn one token, and no one means that; the maxima keep every product and
// sum in the rate limiter and the headers far from overflow.
const (
	MinRateLimit    = 0.001 // requests per second: one per 1000 s
	MaxRateLimit    = 1_000_000
	MaxBurst        = 1_000_000
	MaxMonthlyQuota = 1_000_000_000_000
)

// LimitError is a rate, burst or quota out of bounds. Field is "rate",
// "burst" or "quota"; the CLI's flags have those names, and other callers
// name the field their own way.
type LimitError struct {
	Field string
	Value string // as given, formatted
	Want  string // the accepted values
}

func (e *LimitError) Error() string { return e.Field + " " + e.Value + ": want " + e.Want }

// ValidateLimits checks a key's limits: a rate of 0 (none) or MinRateLimit
// to MaxRateLimit requests per second, a burst of 0 (one second's worth) to
// MaxBurst, a quota of 0 (none) to MaxMonthlyQuota. NaN and infinities are
// refused. The error is a *LimitError.
func ValidateLimits(rate float64, burst int, quota int64) error {
	switch {
	case rate != 0 && !(rate >= MinRateLimit && rate <= MaxRateLimit): // NaN fails both
		return &LimitError{"rate", strconv.FormatFloat(rate, 'g', -1, 64),
			fmt.Sprintf("0 (no limit) or %g to %d requests per second", MinRateLimit, MaxRateLimit)}
	case burst < 0 || burst > MaxBurst:
		return &LimitError{"burst", strconv.Itoa(burst), fmt.Sprintf("0 (one second's worth) to %d requests", MaxBurst)}
	case quota < 0 || quota > MaxMonthlyQuota:
		return &LimitError{"quota", strconv.FormatInt(quota, 10), fmt.Sprintf("0 (no quota) to %d requests a month", MaxMonthlyQuota)}
	}
	return nil
}

// EffectiveBurst is the burst the rate limiter gives k, 0 when k has no rate
// of its own (the defaults then apply, which no key chose).
func EffectiveBurst(k store.Key) int {
	switch {
	case !(k.RateLimit > 0):
		return 0
	case k.Burst > 0:
		return k.Burst
	}
	return DefaultBurst(k.RateLimit)
}

// DefaultBurst is the burst of a rate r > 0 without one: one second's worth,
// at least 1 and, for a rate beyond MaxRateLimit in a hand-edited document,
// at most MaxBurst rather than an overflowed int.
func DefaultBurst(r float64) int { return max(1, int(min(math.Ceil(r), MaxBurst))) }

// Tighter is the lower of two limits, where zero means none.
func Tighter[T int | int64 | float64](a, b T) T {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}
