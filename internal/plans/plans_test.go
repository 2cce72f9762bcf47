package plans

import (
	"testing"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

func TestEffective(t *testing.T) {
	d := Defaults{RateLimit: 2, Burst: 5, MonthlyQuota: 1000, MaxKeys: 10}
	for _, c := range []struct {
		name  string
		d     Defaults
		p     store.Plan
		found bool
		want  store.Plan
	}{
		{"no plan: the defaults", d, store.Plan{Owner: "a", MaxKeys: 99}, false,
			store.Plan{Owner: "a", RateLimit: 2, Burst: 5, MonthlyQuota: 1000, MaxKeys: 10}},
		{"a whole plan", d, store.Plan{Owner: "a", RateLimit: 50, Burst: 80, MonthlyQuota: 7, MaxKeys: 3}, true,
			store.Plan{Owner: "a", RateLimit: 50, Burst: 80, MonthlyQuota: 7, MaxKeys: 3}},
		{"a plan's rate without burst: one second's worth", d, store.Plan{Owner: "a", RateLimit: 50.5}, true,
			store.Plan{Owner: "a", RateLimit: 50.5, Burst: 51, MonthlyQuota: 1000, MaxKeys: 10}},
		{"a plan's burst with the default rate", d, store.Plan{Owner: "a", Burst: 9}, true,
			store.Plan{Owner: "a", RateLimit: 2, Burst: 9, MonthlyQuota: 1000, MaxKeys: 10}},
		{"no default rate, no max keys: no rate, no burst, the store's max keys", Defaults{}, store.Plan{Owner: "a", Burst: 9}, true,
			store.Plan{Owner: "a", MaxKeys: keyrules.DefaultMaxKeys}},
		{"default rate without DEFAULT_BURST", Defaults{RateLimit: 3.2, MaxKeys: keyrules.DefaultMaxKeys}, store.Plan{Owner: "a"}, true,
			store.Plan{Owner: "a", RateLimit: 3.2, Burst: 4, MaxKeys: keyrules.DefaultMaxKeys}},
		{"a plan's key writes; a hand-edited one bounded by the management budget", d, store.Plan{Owner: "a", MintRate: 0.5, MintBurst: 1e6}, true,
			store.Plan{Owner: "a", RateLimit: 2, Burst: 5, MonthlyQuota: 1000, MaxKeys: 10, MintRate: 0.5, MintBurst: keyrules.ManageBurst}},
	} {
		if c.want.MintRate == 0 {
			c.want.MintRate, c.want.MintBurst = keyrules.DefaultMintRate, keyrules.DefaultMintBurst
		}
		if got := c.d.Effective(c.p, c.found); got != c.want {
			t.Errorf("%s: Effective = %+v, want %+v", c.name, got, c.want)
		}
	}
}
