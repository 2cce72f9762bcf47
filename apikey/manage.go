package apikey

import (
	"net/http"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/limit"
)

// The management limit: each key's own bucket for the Gate's management
// endpoints, per instance. They are what a key holder whose key leaked
// uses to revoke it, so they are served outside the data plane: neither
// refused by nor counted against the owner's or the key's rate limits and
// monthly quota, which the leaked key may be burning. This small limit of
// their own keeps one key from flooding the store through them; a flood of
// another key, of the same owner or not, takes nothing from it.
const (
	manageRate  = 20  // requests per second per key
	manageBurst = 100 // requests at once per key: a bulk revocation
)

// management is a handler of the Gate's management endpoints (the keys
// API, usage, the console's calls): Protect serves it under the
// management limit only (admitManagement), not the data plane's limits,
// and does not count it.
type management struct{ http.Handler }

// admitManagement takes one request of the caller e from its management
// bucket, or answers 429 rate_limited with limit "management". It returns
// the bucket's decision, for the headers.
func (g *Gate) admitManagement(w http.ResponseWriter, r *http.Request, e *cacheEntry, now time.Time) limit.Decision {
	k := store.Key{ID: e.key.ID, Owner: e.key.Owner, RateLimit: manageRate, Burst: manageBurst}
	d := g.manageRates.Allow(&k, &store.Plan{}, now)
	d.Which = limit.Management
	if !d.Allowed {
		g.refuse(w, r, rateLimited(d), e.key.Hint)
	}
	return d
}
