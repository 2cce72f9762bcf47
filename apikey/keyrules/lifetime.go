package keyrules

import (
	"fmt"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/problem"
)

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
