package apikey

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/globallimit"
	"github.com/keygate/keygate/internal/limit"
	"github.com/keygate/keygate/internal/meter"
	"github.com/keygate/keygate/internal/ratelimit"
)

// Protect returns next behind the Gate: only a request with a valid key
// that grants scope ("": any), within its limits, reaches next, counted;
// every other request gets the error handler. A key endpoint: use Manage.
func (g *Gate) Protect(scope string, next http.Handler) http.Handler {
	if _, ok := next.(management); ok {
		return g.Manage(scope, next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, r := g.verify(w, r, scope)
		if e == nil {
			return
		}
		rate := g.admit(w, r, e)
		if !rate.Allowed {
			return
		}
		defer g.meter.Done()
		setRateLimit(w.Header(), rate)
		g.varyOnKey(w.Header())
		next.ServeHTTP(w, r)
	})
}

// varyOnKey adds the key header to h's Vary: a response the Gate lets
// through depends on the key, so a cache must not answer another request
// (with another key, or none) with it. The handler still decides whether it
// may be cached at all (Cache-Control); the key endpoints say no-store.
func (g *Gate) varyOnKey(h http.Header) {
	v, ok := h["Vary"]
	switch {
	case !ok:
		h["Vary"] = g.vary
	case !slices.Contains(v, g.header):
		h["Vary"] = append(v, g.header)
	}
}

// Require is Protect as router middleware.
func (g *Gate) Require(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return g.Protect(scope, next) }
}

// verify returns r's verified key, if it grants scope, and r with it in
// its context; else it refuses r and returns nil.
func (g *Gate) verify(w http.ResponseWriter, r *http.Request, scope string) (*cacheEntry, *http.Request) {
	e := g.verified(r)
	if e == nil {
		if e, r = g.authenticate(w, r); e == nil {
			return nil, r
		}
	}
	if scope != "" && !e.grants(scope) {
		g.refuse(w, r, insufficientScope(scope), e.key.Hint)
		return nil, r
	}
	return e, r
}

// Authenticate checks the key only, so that only its holders learn the paths.
func (g *Gate) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.verified(r) == nil {
			var e *cacheEntry
			if e, r = g.authenticate(w, r); e == nil {
				return
			}
		}
		g.varyOnKey(w.Header())
		next.ServeHTTP(w, r)
	})
}

// Key is a verified API key: an alias of store.Key, so that the handlers
// that read it with FromContext, most users' only use of it, need no other
// import.
type Key = store.Key

// keyContextKey is the context key of the verified key.
type keyContextKey struct{}

// FromContext returns the key that Protect or Authenticate verified for ctx.
func FromContext(ctx context.Context) (k Key, ok bool) {
	e, ok := ctx.Value(keyContextKey{}).(*cacheEntry)
	if !ok {
		return Key{}, false
	}
	k = e.key
	k.Scopes = slices.Clone(e.scopes)
	return k, true
}

// verified is the cache entry of r's key if this Gate verified it, or nil:
// a key verified by another Gate (with its own store and configuration) is
// checked again.
func (g *Gate) verified(r *http.Request) *cacheEntry {
	if e, ok := r.Context().Value(g).(*cacheEntry); ok {
		return e
	}
	return nil
}

// verifiedContext is a request's context once a Gate has verified its key:
// the key's entry is its value for keyContextKey (FromContext) and for the
// Gate itself (verified). One allocation, as context.WithValue's.
type verifiedContext struct {
	context.Context
	gate  *Gate
	entry *cacheEntry
}

func (c *verifiedContext) Value(key any) any {
	switch key {
	case keyContextKey{}, any(c.gate):
		return c.entry
	}
	return c.Context.Value(key)
}

// authenticate checks r's key. It returns the key's entry and r with the
// entry in its context, or refuses r and returns nil.
func (g *Gate) authenticate(w http.ResponseWriter, r *http.Request) (*cacheEntry, *http.Request) {
	raw, bad := g.keyOf(r)
	if bad != nil {
		g.refuse(w, r, bad, "")
		return nil, r
	}
	if raw == "" {
		g.refuse(w, r, g.problem(CodeMissingAPIKey), "")
		return nil, r
	}
	if len(raw) > keyformat.MaxLen {
		g.refuse(w, r, g.problem(CodeInvalidAPIKey).because("malformed_key"), "")
		return nil, r
	}
	hint := func() string { return keyformat.Hint(raw) }
	now := g.now()
	// Changes made elsewhere: at once unless the instance has been idle
	// (changes.go).
	g.feed.follow(r.Context(), now)
	d := keyformat.DigestOf(raw)
	e, err := g.keys.cached(d, now)
	if err == errNotCached {
		// The format is checked only here, before a store read: a key the
		// cache knows, found or not, was well formed when it was read,
		// and a cache hit saves the checksum.
		if keyformat.Parse(raw, g.cfg.Prefix) != nil {
			// No hint: a pasted password must not leak 8 characters.
			g.refuse(w, r, g.problem(CodeInvalidAPIKey).because("malformed_key"), "")
			return nil, r
		}
		e, err = g.loadKey(r, d, now)
	}
	switch {
	case errors.Is(err, store.ErrKeyNotFound):
		g.refuse(w, r, g.problem(CodeInvalidAPIKey).because("unknown_key"), hint())
		return nil, r
	case errors.Is(err, ratelimit.ErrTooManyUnknownKeys):
		g.refuse(w, r, tooManyUnknownKeys(err), hint())
		return nil, r
	case err != nil:
		g.refuse(w, r, g.storeUnavailable(err), hint())
		return nil, r
	}
	switch e.key.Status(now) {
	case store.StatusRevoked:
		g.refuse(w, r, g.problem(CodeInvalidAPIKey).because("revoked_key"), hint())
		return nil, r
	case store.StatusExpired:
		g.refuse(w, r, g.problem(CodeExpiredAPIKey).because("expired_key"), hint())
		return nil, r
	}
	// The owner's plan, which the limits apply: at once unless it was never
	// read or is past use.
	if _, err := g.owners.plan(r.Context(), e, now); err != nil {
		g.refuse(w, r, g.storeUnavailable(err), hint())
		return nil, r
	}
	return e, r.WithContext(&verifiedContext{Context: r.Context(), gate: g, entry: e})
}

// loadKey reads the key with digest d for r from the store, waiting for
// the answer (keyCache.load). The read of a key this Gate has not found is
// charged to r's client address (where CLIENT_ADDRESS says the platform
// puts it; for IPv6, its /64: ratelimit.AddressOf) and to the instance before it is made, and
// refunded if the key exists, so only unknown keys (and failed reads) use
// the budget (ratelimit.UnknownKeys): the key checksum is public, and each
// well-formed unknown key costs a store read. Concurrent lookups of one key
// share one read, charged to the request that made it: a burst of requests
// for one uncached key costs its client one token, not one per request.
func (g *Gate) loadKey(r *http.Request, d keyformat.Digest, now time.Time) (*cacheEntry, error) {
	addr := ratelimit.AddressOf(g.clientIP(r)) // only on a miss: both allocate
	read := func(ctx context.Context, id string, prev *store.Key) (store.Key, error) {
		var charge *ratelimit.Charge
		if prev == nil {
			var err error
			if charge, err = g.unknownKeys.Charge(addr, now); err != nil {
				return store.Key{}, err
			}
		}
		k, err := g.reader.readKey(ctx, id, prev)
		if err == nil {
			charge.Refund(g.now())
		}
		return k, err
	}
	for try := 0; ; try++ {
		e, err := g.keys.load(r.Context(), d, read)
		// The read this lookup joined was refused for another address's
		// budget, not this one's: make its own, once.
		if ue, ok := errors.AsType[*ratelimit.UnknownKeysError](err); ok && ue.Addr != addr && try == 0 {
			continue
		}
		return e, err
	}
}

// keyOf returns the key header's value; "" when it is absent or empty, and
// the refusal when it holds two different values, or, in Authorization, a
// scheme other than Bearer.
func (g *Gate) keyOf(r *http.Request) (key string, bad *Error) {
	for _, v := range r.Header[g.header] {
		if g.bearer {
			if v, bad = g.credentials(v); bad != nil {
				return "", bad
			}
		}
		switch {
		case v == "" || v == key:
		case key == "":
			key = v
		default:
			return "", g.problem(CodeMultipleAPIKeys)
		}
	}
	return key, nil
}

// credentials is the key in an Authorization value: after the scheme
// Bearer (RFC 6750), matched case-insensitively, or alone, as clients sent
// it before Bearer was read. Another scheme (Basic, Token) is refused with
// a detail that names Bearer, not with "not valid", since the key may be;
// the scheme sent is not echoed: it may be a key followed by a space.
func (g *Gate) credentials(v string) (string, *Error) {
	scheme, rest, found := strings.Cut(v, " ")
	switch {
	case !found && strings.EqualFold(v, bearerScheme):
		return "", nil
	case !found:
		return v, nil
	case strings.EqualFold(scheme, bearerScheme):
		return strings.TrimLeft(rest, " "), nil
	}
	e := g.problem(CodeInvalidAPIKey).because("wrong_scheme")
	e.Detail = "Send the API key with the Bearer scheme: Authorization: Bearer <key>."
	return "", e
}

// admit applies the key's and its owner's rate limits and quotas to r and
// counts it, in one step with the quota check (Meter.Admit). It returns the
// decision of the rate limit that applied, for the headers; if r may not go
// on, it has refused r, and the decision is not Allowed. Else the caller
// calls Meter.Done once r is answered, so that a shutdown can wait for it.
func (g *Gate) admit(w http.ResponseWriter, r *http.Request, e *cacheEntry) limit.Decision {
	now := g.now()
	// Read by authenticate, so at once, unless a change of the plan has
	// dropped it since.
	plan, err := g.owners.plan(r.Context(), e, now)
	if err != nil {
		g.refuse(w, r, g.storeUnavailable(err), e.key.Hint)
		return limit.Decision{}
	}
	a := meter.Admission{KeyID: e.key.ID, Owner: e.key.Owner, KeyQuota: e.key.MonthlyQuota, OwnerQuota: plan.MonthlyQuota}
	d, q := g.limit(r, e, plan, &a, now)
	if !d.Allowed {
		g.refuse(w, r, rateLimited(d), e.key.Hint)
		return limit.Decision{}
	}
	// With Redis, q is its answer on the quotas; the meter checks them again
	// against this instance's view, a lower bound of Redis's count, so it
	// passes whenever Redis did. Without Redis, or while it is away, the
	// meter's check is the one that applies.
	if q.Allowed {
		q, err = g.meter.Admit(a, now)
	}
	if err != nil {
		// Shutting down: this instance will not count the request, so it
		// does not serve it; the client retries, on another connection.
		down := shuttingDown()
		down.rate = d
		g.refuse(w, r, down, e.key.Hint)
		return limit.Decision{}
	}
	if !q.Allowed {
		g.refuse(w, r, quotaExceeded(q, d, now), e.key.Hint, slog.Int64("used", q.Limit-q.Remaining), slog.Int64("quota", q.Limit))
		return limit.Decision{}
	}
	return d
}

// limit applies the rate limits, and with Redis the quotas too, to r: the
// shared ones on Redis when it answers (from this instance's lease of them,
// or one round trip), else this instance's buckets. It returns the decision of the rate limit that
// applied, and of the quotas: with Redis, Redis's; else Allowed, for the
// meter to check.
//
// This instance's buckets are taken first, with Redis too, and a token is
// given back when Redis refuses: so they hold everything this instance
// admitted, whichever limiter decided, and a request that falls back
// spends what Redis admitted. A flood that times Redis out, or that finds
// it answering one call and not the next, gets no more from an instance
// than its own bound (TestGlobalFallbackSpendsWhatRedisAdmitted); a request
// past that bound is refused without a round trip. With one instance's
// traffic within the shared limit, which is never looser, the buckets
// never refuse what Redis would admit, but for a token of clock difference.
func (g *Gate) limit(r *http.Request, e *cacheEntry, plan *store.Plan, a *meter.Admission, now time.Time) (rate, quota limit.Decision) {
	rate = g.rates.Allow(&e.key, plan, now)
	if g.global == nil || !rate.Allowed {
		return rate, limit.Decision{Allowed: true}
	}
	req := globallimit.Request{KeyID: a.KeyID, Owner: a.Owner, KeyQuota: a.KeyQuota, OwnerQuota: a.OwnerQuota, At: now}
	req.KeyRate, req.OwnerRate = ratelimit.Rates(&e.key, plan)
	if !req.Limited() {
		return rate, limit.Decision{Allowed: true}
	}
	if a.KeyQuota > 0 || a.OwnerQuota > 0 {
		// The floors are read only for a call to Redis: a request admitted
		// from a lease takes no lock of the meter's.
		req.Usage = g.meter
		m := g.monthOf(now)
		req.Month = m.name
		req.Expiry = time.Unix(0, m.end).Add(24 * time.Hour).Sub(now) // a day past the month: clocks differ
	}
	// An error means Redis did not answer: the limiter has logged it, and
	// this instance's limits, taken above, apply.
	d, err := g.global.Admit(r.Context(), &req)
	if err != nil {
		return rate, limit.Decision{Allowed: true}
	}
	if !d.Allowed() {
		g.rates.GiveBack(&e.key, plan, now)
	}
	return d.Rate, d.Quota
}

// monthSpan is a UTC month, named as the usage record names it.
type monthSpan struct {
	start, end int64 // Unix ns
	name       string
}

// monthOf is now's month, its name formatted once a month, not per request.
func (g *Gate) monthOf(now time.Time) *monthSpan {
	ns := now.UnixNano()
	if m := g.month.Load(); m != nil && m.start <= ns && ns < m.end {
		return m
	}
	start := keyrules.NextMonth(now).AddDate(0, -1, 0)
	m := &monthSpan{start: start.UnixNano(), end: keyrules.NextMonth(now).UnixNano(), name: string(store.MonthOf(now))}
	g.month.Store(m)
	return m
}
