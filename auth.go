package keygate

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Authenticator checks the API key of every request and puts the verified
// key in the request context; its Middleware refuses the rest.
type Authenticator struct {
	header    string // as configured, for messages
	canonical string // canonical form, for the header map
	prefix    string
	project   string
	keys      *KeyCache
	now       func() time.Time
	log       *slog.Logger
	challenge string
}

// NewAuthenticator returns an Authenticator that reads keys from cfg.Header,
// accepts cfg.Prefix and looks keys up in keys.
func NewAuthenticator(cfg Config, keys *KeyCache, now func() time.Time, log *slog.Logger) *Authenticator {
	return &Authenticator{
		header:    cfg.Header,
		canonical: http.CanonicalHeaderKey(cfg.Header),
		prefix:    cfg.Prefix,
		project:   cfg.Project,
		keys:      keys,
		now:       now,
		log:       log,
		challenge: `APIKey realm="keygate", header="` + cfg.Header + `"`,
	}
}

// keyContextKey is the context key of the verified key.
type keyContextKey struct{}

// KeyFromContext returns the verified key of the request whose context is
// ctx; ok is false outside the Authenticator's middleware.
func KeyFromContext(ctx context.Context) (k Key, ok bool) {
	e, ok := ctx.Value(keyContextKey{}).(*cacheEntry)
	if !ok {
		return Key{}, false
	}
	return e.key, true
}

// entryOf is the cache entry of r's verified key, which every route has: the
// router serves only behind the Authenticator.
func entryOf(r *http.Request) *cacheEntry {
	return r.Context().Value(keyContextKey{}).(*cacheEntry)
}

// refusal is why a request was refused: the response code and, for the
// log, a finer reason.
type refusal struct {
	status int
	code   string
	reason string // for the log only: never in a response
}

// The refusals. Malformed, unknown and revoked keys share one response, so
// that a caller learns nothing about which it sent.
var (
	refuseMissing   = refusal{http.StatusUnauthorized, "missing_api_key", "missing_api_key"}
	refuseMalformed = refusal{http.StatusUnauthorized, "invalid_api_key", "malformed_key"}
	refuseUnknown   = refusal{http.StatusUnauthorized, "invalid_api_key", "unknown_key"}
	refuseRevoked   = refusal{http.StatusUnauthorized, "invalid_api_key", "revoked_key"}
	refuseExpired   = refusal{http.StatusUnauthorized, "expired_api_key", "expired_key"}
	refuseMultiple  = refusal{http.StatusBadRequest, "multiple_api_keys", "multiple_api_keys"}
	refuseStore     = refusal{http.StatusServiceUnavailable, "store_unavailable", "store_unavailable"}
	// An address over its budget of unknown-key reads: a 429, not a 401,
	// because the key was not checked and may be valid.
	refuseUnknownKeys = refusal{http.StatusTooManyRequests, "too_many_unknown_keys", "too_many_unknown_keys"}
)

// Middleware refuses requests without a valid key and serves the others with
// next, the verified key in their context.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := a.keyOf(r)
		if !ok {
			a.refuse(w, r, refuseMultiple, "")
			return
		}
		if raw == "" {
			a.refuse(w, r, refuseMissing, "")
			return
		}
		if len(raw) > MaxKeyLen || ParseKey(raw, a.prefix) != nil {
			a.refuse(w, r, refuseMalformed, "")
			return
		}
		now := a.now()
		d := digestOf(raw)
		e, err := a.keys.cached(d, now)
		if err == errNotCached {
			// Only here is the client address needed: clientIP allocates.
			e, err = a.keys.load(r.Context(), d, now, clientIP(r))
		}
		switch {
		case errors.Is(err, ErrKeyNotFound):
			a.refuse(w, r, refuseUnknown, raw)
			return
		case errors.Is(err, ErrTooManyUnknownKeys):
			a.refuseUnknownKeys(w, r, raw, err)
			return
		case err != nil:
			a.refuse(w, r, refuseStore, raw, slog.String("error", err.Error()))
			return
		}
		switch e.key.Status(now) {
		case "revoked":
			a.refuse(w, r, refuseRevoked, raw)
			return
		case "expired":
			a.refuse(w, r, refuseExpired, raw)
			return
		}
		// The owner's plan, which the limits apply: at once unless it was
		// never read or is past use.
		if _, err := a.keys.owners.plan(r.Context(), e.owner, now); err != nil {
			a.refuse(w, r, refuseStore, raw, slog.String("error", err.Error()))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyContextKey{}, e)))
	})
}

// keyOf returns the key header's value; "" when it is absent or empty, and
// ok false when it holds two different values.
func (a *Authenticator) keyOf(r *http.Request) (key string, ok bool) {
	vals := r.Header[a.canonical]
	for _, v := range vals {
		switch {
		case v == "" || v == key:
		case key == "":
			key = v
		default:
			return "", false
		}
	}
	return key, true
}

// refuse answers r with the refusal's problem and logs it at WARNING with the
// reason and, for a well-formed key, its hint: never the key.
func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, why refusal, wellFormedKey string, attrs ...slog.Attr) {
	attrs = append(attrs, slog.String("reason", why.reason))
	if wellFormedKey != "" {
		attrs = append(attrs, slog.String("key_hint", KeyHint(wellFormedKey)))
	}
	logRequest(r.Context(), a.log, slog.LevelWarn, r, a.project, "request refused", attrs...)

	switch why.status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", a.challenge)
	case http.StatusServiceUnavailable:
		setRetryAfter(w, storeRetryBackoff)
	}
	writeProblem(w, newProblem(why.status, why.code, a.detail(why.code)))
}

// refuseUnknownKeys answers 429 too_many_unknown_keys, with Retry-After
// the time until the address may read an unknown key again.
func (a *Authenticator) refuseUnknownKeys(w http.ResponseWriter, r *http.Request, raw string, err error) {
	retry := storeRetryBackoff
	if ue, ok := errors.AsType[*unknownKeysError](err); ok {
		retry = ue.retry
	}
	setRetryAfter(w, retry)
	a.refuse(w, r, refuseUnknownKeys, raw)
}

// detail is the response detail of a refusal code.
func (a *Authenticator) detail(code string) string {
	switch code {
	case "missing_api_key":
		return "Send your API key in the " + a.header + " header."
	case "multiple_api_keys":
		return "Send one API key in one " + a.header + " header, not several."
	case "expired_api_key":
		return "The API key has expired."
	case "store_unavailable":
		return "API keys cannot be checked right now. Retry shortly."
	case "too_many_unknown_keys":
		return "Too many unknown API keys from this address. Retry after the number of seconds in Retry-After."
	}
	return "The API key is not valid."
}
