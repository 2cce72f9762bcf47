package keyrules_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/keyrules"
)

func TestValidateLimits(t *testing.T) {
	cases := []struct {
		rate  float64
		burst int
		quota int64
		field string // "": valid
	}{
		{0, 0, 0, ""},
		{keyrules.MinRateLimit, 1, 1, ""},
		{keyrules.MaxRateLimit, keyrules.MaxBurst, keyrules.MaxMonthlyQuota, ""},
		{1e-300, 0, 0, "rate"},
		{keyrules.MinRateLimit / 2, 0, 0, "rate"},
		{-1, 0, 0, "rate"},
		{keyrules.MaxRateLimit * 1.5, 0, 0, "rate"},
		{math.NaN(), 0, 0, "rate"},
		{math.Inf(1), 0, 0, "rate"},
		{math.Inf(-1), 0, 0, "rate"},
		{1, -1, 0, "burst"},
		{1, keyrules.MaxBurst + 1, 0, "burst"},
		{0, 0, -1, "quota"},
		{0, 0, keyrules.MaxMonthlyQuota + 1, "quota"},
		{0, 0, math.MaxInt64, "quota"},
	}
	for _, c := range cases {
		err := keyrules.ValidateLimits(c.rate, c.burst, c.quota)
		var le *keyrules.LimitError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("ValidateLimits(%v, %d, %d) = %v, want nil", c.rate, c.burst, c.quota, err)
		case c.field != "" && (!errors.As(err, &le) || le.Field != c.field || !strings.HasPrefix(err.Error(), c.field+" ")):
			t.Errorf("ValidateLimits(%v, %d, %d) = %v, want an error on %s", c.rate, c.burst, c.quota, err, c.field)
		}
	}
}
