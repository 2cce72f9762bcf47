package store_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/store"
)

func TestValidateLimits(t *testing.T) {
	cases := []struct {
		rate  float64
		burst int
		quota int64
		field string // "": valid
	}{
		{0, 0, 0, ""},
		{store.MinRateLimit, 1, 1, ""},
		{store.MaxRateLimit, store.MaxBurst, store.MaxMonthlyQuota, ""},
		{1e-300, 0, 0, "rate"},
		{store.MinRateLimit / 2, 0, 0, "rate"},
		{-1, 0, 0, "rate"},
		{store.MaxRateLimit * 1.5, 0, 0, "rate"},
		{math.NaN(), 0, 0, "rate"},
		{math.Inf(1), 0, 0, "rate"},
		{math.Inf(-1), 0, 0, "rate"},
		{1, -1, 0, "burst"},
		{1, store.MaxBurst + 1, 0, "burst"},
		{0, 0, -1, "quota"},
		{0, 0, store.MaxMonthlyQuota + 1, "quota"},
		{0, 0, math.MaxInt64, "quota"},
	}
	for _, c := range cases {
		err := store.ValidateLimits(c.rate, c.burst, c.quota)
		var le *store.LimitError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("ValidateLimits(%v, %d, %d) = %v, want nil", c.rate, c.burst, c.quota, err)
		case c.field != "" && (!errors.As(err, &le) || le.Field != c.field || !strings.HasPrefix(err.Error(), c.field+" ")):
			t.Errorf("ValidateLimits(%v, %d, %d) = %v, want an error on %s", c.rate, c.burst, c.quota, err, c.field)
		}
	}
}

func TestParseLifetimeAndGrace(t *testing.T) {
	for _, c := range []struct {
		s         string
		life, gra bool // valid as a lifetime, as a grace
	}{
		{"1ns", false, true}, {"999ms", false, true}, {"0s", false, true}, {"1s", true, true},
		{"720h", true, true}, {"721h", true, false}, {"87600h", true, false}, {"87601h", false, false},
		{"-1s", false, false}, {"30d", false, false}, {"", false, false},
	} {
		if _, err := store.ParseLifetime(c.s); (err == nil) != c.life {
			t.Errorf("ParseLifetime(%q) = %v, want ok %v", c.s, err, c.life)
		}
		if _, err := store.ParseGrace(c.s); (err == nil) != c.gra {
			t.Errorf("ParseGrace(%q) = %v, want ok %v", c.s, err, c.gra)
		}
	}
	_, err := store.ParseLifetime(strings.Repeat("9", 10_000))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("a long value is echoed whole: %.300v", err)
	}
}
