package apikey

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

func TestConfigLimits(t *testing.T) {
	for _, c := range []struct{ name, value string }{
		{"DEFAULT_RATE_LIMIT", "1e-300"},
		{"DEFAULT_RATE_LIMIT", "Inf"},
		{"DEFAULT_RATE_LIMIT", "1000001"},
		{"DEFAULT_BURST", "1000001"},
		{"DEFAULT_BURST", "-1"},
	} {
		_, err := LoadConfig(func(k string) string {
			if k == c.name {
				return c.value
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), c.name+"=") {
			t.Errorf("%s=%s: %v, want an error naming it", c.name, c.value, err)
		}
	}
	cfg, err := LoadConfig(func(k string) string {
		return map[string]string{"DEFAULT_RATE_LIMIT": "0.001", "DEFAULT_BURST": "1000000"}[k]
	})
	if err != nil || cfg.DefaultRateLimit != 0.001 || cfg.DefaultBurst != 1_000_000 {
		t.Errorf("bounds: %+v, %v", cfg, err)
	}
}

// TestRateLimitHeadersSaturate serves keys whose documents were edited by
// hand with absurd limits: every header stays a non-negative decimal that
// fits in int64, and Retry-After at least 1.
func TestRateLimitHeadersSaturate(t *testing.T) {
	s := newServer(t, nil, func(c *Config) { c.FlushInterval = time.Hour })
	decimal := regexp.MustCompile(`^[0-9]+$`)
	for _, c := range []struct {
		name  string
		rate  float64
		burst int
	}{
		{"tiny rate", 1e-300, 1},
		{"tiniest rate", 5e-324, 0},
		{"tiny rate, huge burst", 1e-300, math.MaxInt},
		{"huge rate", 1e300, 0},
		{"huge rate and burst", math.MaxFloat64, math.MaxInt},
		{"huge burst", 1, math.MaxInt},
		{"negative burst", 1, -5},
		{"infinite rate", math.Inf(1), 0},
		{"NaN rate", math.NaN(), 3},
		{"negative rate", -1, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, _ := s.mint(t, "acme", func(k *store.Key) { k.RateLimit, k.Burst = c.rate, c.burst })
			for i := range 3 {
				w := s.call("GET", "/", key, "")
				for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"} {
					v := w.Header().Values(h)
					if len(v) == 0 {
						continue
					}
					if len(v) != 1 || !decimal.MatchString(v[0]) {
						t.Fatalf("request %d: %s = %q", i, h, v)
					}
					if _, err := strconv.ParseInt(v[0], 10, 64); err != nil {
						t.Errorf("request %d: %s = %s: %v", i, h, v[0], err)
					}
				}
				if w.Code == 429 {
					retry, _ := strconv.ParseInt(w.Header().Get("Retry-After"), 10, 64)
					reset, _ := strconv.ParseInt(w.Header().Get("RateLimit-Reset"), 10, 64)
					// One token comes no later than a full bucket; at a tiny rate, late.
					if retry < 1 || retry > reset || c.rate < 1e-6 && retry < 1e6 {
						t.Errorf("request %d: Retry-After %d with RateLimit-Reset %d", i, retry, reset)
					}
				}
				s.clock.Advance(time.Millisecond)
			}
		})
	}
}
