// Package plans resolves an owner's plan against the configured defaults:
// the limits that apply to an owner, for the Gate and for the CLI's
// "apikey plan".
package plans

import (
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// Defaults are the limits of an owner whose plan does not set them
// (DEFAULT_RATE_LIMIT, DEFAULT_BURST, DEFAULT_MONTHLY_QUOTA,
// DEFAULT_MAX_KEYS).
type Defaults struct {
	RateLimit    float64
	Burst        int
	MonthlyQuota int64
	MaxKeys      int
}

// Effective is the plan an owner gets: p's own values where it has them
// (found says whether the owner has a stored plan at all; without one, p
// is ignored) and the defaults for the rest. Rate and burst go together: a
// plan's rate without a burst gets one second's worth of it, a plan's
// burst without a rate applies to the default rate, and the burst of no
// rate (no limit) is 0. So the result's every field is the value that
// applies; its UpdatedAt is p's. The mints (MintRate,
// MintBurst) default each on its own to keyrules's.
func (d Defaults) Effective(p store.Plan, found bool) store.Plan {
	if !found {
		p = store.Plan{Owner: p.Owner}
	}
	e := p
	if !(e.RateLimit > 0) {
		e.RateLimit = d.RateLimit
		if e.Burst <= 0 {
			e.Burst = d.Burst
		}
	}
	switch {
	case !(e.RateLimit > 0):
		e.RateLimit, e.Burst = 0, 0
	case e.Burst <= 0:
		e.Burst = keyrules.DefaultBurst(e.RateLimit)
	}
	if e.MonthlyQuota <= 0 {
		e.MonthlyQuota = d.MonthlyQuota
	}
	if e.MaxKeys <= 0 {
		e.MaxKeys = d.MaxKeys
	}
	if e.MaxKeys <= 0 {
		e.MaxKeys = keyrules.DefaultMaxKeys // a Config built by hand, without LoadConfig
	}
	// Not configured: the mints' defaults are keyrules's, each bounded
	// by the management budget they draw from, also in a hand-edited plan.
	if !(e.MintRate > 0) {
		e.MintRate = keyrules.DefaultMintRate
	}
	e.MintRate = min(e.MintRate, keyrules.ManageRate)
	if e.MintBurst <= 0 {
		e.MintBurst = keyrules.DefaultMintBurst
	}
	e.MintBurst = min(e.MintBurst, keyrules.ManageBurst)
	return e
}
