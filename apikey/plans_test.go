package apikey

import (
	"testing"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

func TestEffectivePlan(t *testing.T) {
	cfg := testConfig(func(c *Config) {
		c.DefaultRateLimit, c.DefaultBurst, c.DefaultMonthlyQuota, c.DefaultMaxKeys = 2, 5, 1000, 10
	})
	none := testConfig(func(c *Config) { c.DefaultMaxKeys = 0 })
	for _, c := range []struct {
		name  string
		cfg   Config
		p     store.Plan
		found bool
		want  store.Plan
	}{
		{"no plan: the defaults", cfg, store.Plan{Owner: "a", MaxKeys: 99}, false,
			store.Plan{Owner: "a", RateLimit: 2, Burst: 5, MonthlyQuota: 1000, MaxKeys: 10}},
		{"a whole plan", cfg, store.Plan{Owner: "a", RateLimit: 50, Burst: 80, MonthlyQuota: 7, MaxKeys: 3}, true,
			store.Plan{Owner: "a", RateLimit: 50, Burst: 80, MonthlyQuota: 7, MaxKeys: 3}},
		{"a plan's rate without burst: one second's worth", cfg, store.Plan{Owner: "a", RateLimit: 50.5}, true,
			store.Plan{Owner: "a", RateLimit: 50.5, Burst: 51, MonthlyQuota: 1000, MaxKeys: 10}},
		{"a plan's burst with the default rate", cfg, store.Plan{Owner: "a", Burst: 9}, true,
			store.Plan{Owner: "a", RateLimit: 2, Burst: 9, MonthlyQuota: 1000, MaxKeys: 10}},
		{"no default rate: no rate, no burst", none, store.Plan{Owner: "a", Burst: 9}, true,
			store.Plan{Owner: "a", MaxKeys: keyrules.DefaultMaxKeys}},
		{"default rate without DEFAULT_BURST", testConfig(func(c *Config) { c.DefaultRateLimit = 3.2 }), store.Plan{Owner: "a"}, true,
			store.Plan{Owner: "a", RateLimit: 3.2, Burst: 4, MaxKeys: keyrules.DefaultMaxKeys}},
	} {
		if got := c.cfg.EffectivePlan(c.p, c.found); got != c.want {
			t.Errorf("%s: EffectivePlan = %+v, want %+v", c.name, got, c.want)
		}
	}
}
