package apikey

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/globallimit"
	"github.com/keygate/keygate/internal/limit"
	"github.com/keygate/keygate/internal/problem"
	"github.com/keygate/keygate/internal/ratelimit"
)

// The management endpoints (KeysHandlers) are what a key holder whose key
// leaked uses to revoke it, so they are served outside the data plane:
// neither refused by nor counted against the rate limits and monthly
// quotas, which the leaked key may be burning. Instead the owner's
// management budget bounds them (keyrules.ManageRate): one per owner, not
// per key, so that no chain of keys minted or rotated through them brings
// a fresh one, and a flood of one owner takes nothing from another's.
//
// Their kind is said where they are mounted: Manage (or Protect given the
// endpoint itself) admits a request under the budget and marks it
// managed; the endpoint refuses a request that reached it unmarked (one
// that a middleware hid it from Protect, which then served it as the data
// plane), and a mint (create, rotate) takes from the owner's mints itself.

// managedKey marks the context of a request that Manage admitted, for the
// Gate that is its value.
type managedKey struct{}

// management is a management endpoint: f serves it once the request is
// admitted as management, and a mint (one that makes a key) once the
// owner's mints allow it.
type management struct {
	g    *Gate
	mint bool
	f    func(http.ResponseWriter, *http.Request, *cacheEntry)
}

// managed returns the management endpoint served by f.
func (g *Gate) managed(mint bool, f func(http.ResponseWriter, *http.Request, *cacheEntry)) http.Handler {
	return management{g: g, mint: mint, f: f}
}

func (m management) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := m.g.caller(w, r)
	if e == nil {
		return
	}
	if r.Context().Value(managedKey{}) != m.g {
		m.g.logRequest(r, slog.LevelError,
			"a keygate key endpoint was reached through Gate.Protect or Require with a middleware between them, "+
				"which hides it: it was served as the data plane. Mount it with Gate.Manage or Gate.RequireManage: request refused")
		problem.Write(w, problem.New(http.StatusInternalServerError, CodeMisconfigured,
			"The service is misconfigured; its logs say how."))
		return
	}
	if m.mint {
		d := m.g.admitManagement(w, r, e, true)
		if !d.Allowed {
			return
		}
		setRateLimit(w.Header(), d) // the tighter budget of the two
	}
	m.f(w, r, e)
}

// Manage is Protect for the key endpoints, however wrapped: within the
// owner's management budget, not its limits; not counted.
func (g *Gate) Manage(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Cache-Control"] = noStore // keys, usage: every answer, refusals too
		e, r := g.verify(w, r, scope)
		if e == nil {
			return
		}
		d := g.admitManagement(w, r, e, false)
		if !d.Allowed {
			return
		}
		setRateLimit(w.Header(), d)
		g.varyOnKey(w.Header())
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), managedKey{}, g)))
	})
}

// RequireManage is Manage as router middleware.
func (g *Gate) RequireManage(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return g.Manage(scope, next) }
}

// admitManagement takes one request of the caller e's owner from its
// management budget, or of its mints (mint), on Redis when it
// answers, else on this instance; or answers 429 rate_limited with limit
// "management". It returns the decision, for the headers.
func (g *Gate) admitManagement(w http.ResponseWriter, r *http.Request, e *cacheEntry, mint bool) limit.Decision {
	now := g.now()
	rate, bucket, local := ratelimit.Rate{PerSecond: keyrules.ManageRate, Burst: keyrules.ManageBurst}, "manage", g.manageRates
	if mint {
		plan, err := g.owners.plan(r.Context(), e, now)
		if err != nil {
			g.refuse(w, r, g.storeUnavailable(err), e.key.Hint)
			return limit.Decision{}
		}
		rate, bucket, local = ratelimit.Rate{PerSecond: plan.MintRate, Burst: plan.MintBurst}, "manage-mints", g.manageMints
	}
	// As the data plane's (Gate.limit): this instance's bucket first, then
	// Redis's, the instance's token given back on Redis's refusal, so that
	// a fallback spends only what Redis admitted. An error means Redis did
	// not answer: the limiter has logged it, and the instance's applies.
	k, p := store.Key{ID: e.key.ID, Owner: e.key.Owner}, store.Plan{RateLimit: rate.PerSecond, Burst: rate.Burst}
	d := local.Allow(&k, &p, now)
	if d.Allowed && g.global != nil {
		if gd, err := g.global.Admit(r.Context(), &globallimit.Request{Owner: e.key.Owner, OwnerRate: rate, Bucket: bucket}); err == nil {
			if !gd.Rate.Allowed {
				local.GiveBack(&k, &p, now)
			}
			d = gd.Rate
		}
	}
	d.Which = limit.Management
	if !d.Allowed {
		g.refuse(w, r, rateLimited(d), e.key.Hint)
	}
	return d
}
