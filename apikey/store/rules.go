package store

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/problem"
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

// The bounds of a key's lifetime (expires_in, --expires) and of a rotation's
// grace (grace, --grace). A lifetime under a second would mint a key that is
// expired before anyone can use it.
const (
	MinLifetime = time.Second
	MaxLifetime = 10 * 365 * 24 * time.Hour
	MaxGrace    = 30 * 24 * time.Hour
	// DefaultGrace is the grace of a rotation that names none.
	DefaultGrace = 24 * time.Hour
)

// ParseLifetime parses a key's lifetime: a Go duration from MinLifetime to
// MaxLifetime. The error quotes s, shortened, and says what is accepted.
func ParseLifetime(s string) (time.Duration, error) {
	return parseDuration(s, MinLifetime, MaxLifetime, "720h (30 days)")
}

// ParseGrace parses a rotation's grace: a Go duration from 0s to MaxGrace.
func ParseGrace(s string) (time.Duration, error) {
	return parseDuration(s, 0, MaxGrace, "24h")
}

func parseDuration(s string, lo, hi time.Duration, example string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("%s: want a Go duration from %s to %s, such as %s", problem.QuoteShort(s), formatHours(lo), formatHours(hi), example)
	}
	return d, nil
}

// formatHours writes d as people write bounds: 0s, 1s, 720h.
func formatHours(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return d.String()
}

// EffectiveBurst is the burst the rate limiter gives k, 0 when k has no rate of its
// own (the defaults then apply, which no key chose).
func (k *Key) EffectiveBurst() int {
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

// MaxScopes is the most scopes a key may hold, and MaxScopeLen the longest
// scope name, in bytes.
const (
	MaxScopes   = 32
	MaxScopeLen = 64
)

// ValidScope reports whether s is a well-formed scope name: words of
// lowercase letters, digits, '_', '-' and '.', each starting with a letter
// or digit, joined by ':', at most MaxScopeLen bytes, such as "things:read"
// or "billing". Scopes belong to the application: keygate knows none in
// advance and checks only their form.
func ValidScope(s string) bool {
	if s == "" || len(s) > MaxScopeLen {
		return false
	}
	start := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			start = false
		case (c == '_' || c == '-' || c == '.') && !start:
		case c == ':' && !start:
			start = true
		default:
			return false
		}
	}
	return !start
}

// ValidateScopes checks a key's scopes: at most MaxScopes, each well formed
// (see ValidScope), none repeated. The error quotes the scope shortened:
// the API answers it.
func ValidateScopes(scopes []string) error {
	if len(scopes) > MaxScopes {
		return fmt.Errorf("%d scopes: want at most %d", len(scopes), MaxScopes)
	}
	for i, s := range scopes {
		if !ValidScope(s) {
			return fmt.Errorf("scope %s is not a scope name: want words of a-z, 0-9, '_', '-' and '.' joined by ':', at most %d bytes, such as things:read", problem.QuoteShort(s), MaxScopeLen)
		}
		if slices.Contains(scopes[:i], s) {
			return fmt.Errorf("scope %s is listed twice", problem.QuoteShort(s))
		}
	}
	return nil
}
