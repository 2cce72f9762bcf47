package apikey

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/limit"
	"github.com/keygate/keygate/internal/problem"
	"github.com/keygate/keygate/internal/ratelimit"
)

// Error is a request the Gate refused: what the client is told, as an
// RFC 9457 problem, and why.
type Error struct {
	Status     int           // the HTTP status
	Code       Code          // why, for machines
	Detail     string        // why, for people
	Scope      string        // the scope an insufficient_scope key lacks
	Limit      Limit         // whose limit a 429 hit
	RetryAfter time.Duration // when a retry may pass; 0: retrying will not help
	Err        error         // the cause of a 503, for logs: never sent

	reason string // a finer reason than Code, for the log only
	// rate is the rate limit that applied, if one did: the RateLimit
	// headers of a request refused after its rate limit was taken.
	rate limit.Decision
}

// Limit is whose limit a 429 hit: the "limit" member of its problem.
type Limit string

const (
	LimitKey        Limit = "key"        // the key's own rate limit or quota
	LimitOwner      Limit = "owner"      // its owner's plan's, shared by the owner's keys
	LimitManagement Limit = "management" // the key's own, on the management endpoints
)

// limitOf is the Limit of whose limit w says: the one conversion from the
// limiters' answers to the Error's.
func limitOf(w limit.Which) Limit { return Limit(w.String()) }

func (e *Error) Error() string { return string(e.Code) + ": " + e.Detail }

func (e *Error) Unwrap() error { return e.Err }

// because sets the log's reason, finer than the code the client sees.
func (e *Error) because(reason string) *Error {
	e.reason = reason
	return e
}

// An ErrorHandler writes a refusal, once the Gate has logged it and set its
// headers (WWW-Authenticate, Retry-After, RateLimit-*, Connection).
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err *Error)

// WriteError is the default ErrorHandler: err as application/problem+json.
func WriteError(w http.ResponseWriter, r *http.Request, err *Error) {
	p := problem.New(err.Status, err.Code, err.Detail)
	p.Scope, p.Limit = err.Scope, string(err.Limit)
	problem.Write(w, p)
}

// refuse is the one way the Gate refuses a request: it logs the refusal with
// its reason and, when there is one, the key's hint (never the key), sets
// the headers, and calls the error handler. A store that did not answer is
// logged at ERROR, the service's trouble; every other refusal at WARNING,
// the caller's.
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, e *Error, hint string, attrs ...slog.Attr) {
	reason := e.reason
	if reason == "" {
		reason = string(e.Code)
	}
	attrs = append(attrs, slog.String("reason", reason))
	if hint != "" {
		attrs = append(attrs, slog.String("key_hint", hint))
	}
	if e.Scope != "" {
		attrs = append(attrs, slog.String("scope", e.Scope))
	}
	if e.Limit != "" {
		attrs = append(attrs, slog.String("limit", string(e.Limit)))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	level := slog.LevelWarn
	if e.Status == http.StatusServiceUnavailable && (e.Code == CodeStoreUnavailable || e.Code == CodeOutcomeUnknown || e.Code == CodeStoreBusy) {
		level = slog.LevelError
	}
	g.logRequest(r, level, "request refused", attrs...)
	h := w.Header()
	// A refusal is about the key and the moment (its limits, the store):
	// never an answer for a cache to give again.
	h["Cache-Control"] = noStore
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", g.challenge)
	}
	if e.RetryAfter > 0 {
		problem.SetRetryAfter(w, e.RetryAfter)
	}
	if e.Code == CodeShuttingDown {
		h.Set("Connection", "close")
	}
	setRateLimit(h, e.rate)
	g.onError(w, r, e)
}

// noStore is the Cache-Control of the refusals and of the key endpoints'
// answers, one slice for all (len == cap: an append copies), so that a
// flood of refusals allocates nothing for it.
var noStore = []string{"no-store"}

// setRateLimit sets the RateLimit-Limit, -Remaining and -Reset headers of
// d, if a rate limit applied: on a refused request (refuse) and an admitted
// one (Protect), nowhere else. The header names are in canonical form, and
// the three values share one slice: on the hot path, that saves six
// allocations over Header.Set.
func setRateLimit(h http.Header, d limit.Decision) {
	if d.Which == limit.None {
		return
	}
	vals := []string{strconv.FormatInt(d.Limit, 10), strconv.FormatInt(d.Remaining, 10), strconv.FormatInt(d.Reset, 10)}
	h["Ratelimit-Limit"] = vals[0:1:1]
	h["Ratelimit-Remaining"] = vals[1:2:2]
	h["Ratelimit-Reset"] = vals[2:3:3]
}

// bearerScheme is the scheme of a key sent in Authorization (RFC 6750).
const bearerScheme = "Bearer"

// challenge is the WWW-Authenticate of a 401 for keys in header: Bearer's
// (RFC 6750) in Authorization, where a client looks for a scheme it knows,
// else keygate's own, naming the header.
func challenge(header string) string {
	if http.CanonicalHeaderKey(header) == "Authorization" {
		return bearerScheme + ` realm="keygate"`
	}
	return `APIKey realm="keygate", header="` + header + `"`
}

// problem is the Error of a refusal of the key itself.
func (g *Gate) problem(code Code) *Error {
	e := &Error{Status: http.StatusUnauthorized, Code: code}
	switch code {
	case CodeMissingAPIKey:
		e.Detail = "Send your API key in the " + g.cfg.Header + " header."
		if g.bearer {
			e.Detail = "Send your API key in the Authorization header: Authorization: Bearer <key>."
		}
	case CodeMultipleAPIKeys:
		e.Status, e.Detail = http.StatusBadRequest, "Send one API key in one "+g.cfg.Header+" header, not several."
	case CodeExpiredAPIKey:
		e.Detail = "The API key has expired."
	default:
		e.Detail = "The API key is not valid."
	}
	return e
}

// tooManyUnknownKeys is the 429 of err, a spent budget of unknown-key
// reads (ratelimit.UnknownKeysError), saying whose: the client address's
// own, or the instance's, for all addresses together, which a client
// cannot help by slowing down alone. A 429, not a 401: the key was not
// checked and may be valid.
func tooManyUnknownKeys(err error) *Error {
	e := &Error{Status: http.StatusTooManyRequests, Code: CodeTooManyUnknownKeys, RetryAfter: storeRetryBackoff, reason: "address_budget",
		Detail: "Too many unknown API keys from this client address (for IPv6, its /64). Retry after the number of seconds in Retry-After."}
	if ue, ok := errors.AsType[*ratelimit.UnknownKeysError](err); ok {
		e.RetryAfter = ue.Retry
		if ue.Instance {
			e.reason = "instance_budget"
			e.Detail = "Too many unknown API keys from all clients of this server instance together, not from this address alone. Retry after the number of seconds in Retry-After."
		}
	}
	return e
}

// storeUnavailable is the 503 of a store that did not answer: the key may
// be valid, so it is not refused as invalid. A write whose answer was lost,
// and which could not be read back, is 503 outcome_unknown: the caller must
// look before it writes again (see store.ConfirmWrites). A write that the
// store kept refusing because others contended (store.ErrBusy) is
// store_busy: the store is up, and says so.
func (g *Gate) storeUnavailable(err error) *Error {
	if errors.Is(err, store.ErrOutcomeUnknown) {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeOutcomeUnknown, Err: g.explain(err),
			Detail: "The change was sent, but the store's answer was lost and reading it back failed: it may or may not have taken effect. Read the key (GET its URL, or list the keys) before you retry."}
	}
	if errors.Is(err, store.ErrBusy) {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeStoreBusy, RetryAfter: storeRetryBackoff,
			Detail: "The key store is busy with other changes to the same keys, and this one did not get through in time. Retry shortly.", Err: err}
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable, RetryAfter: storeRetryBackoff,
		Detail: "API keys cannot be checked right now. Retry shortly.", Err: g.explain(err)}
}

// insufficientScope is the 403 of a key that lacks scope.
func insufficientScope(scope string) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeInsufficientScope, Scope: scope,
		Detail: "This API key lacks the scope " + scope + "."}
}

// rateLimited is the 429 of a key over the rate limit of d: its own, its
// owner's, or its management limit.
func rateLimited(d limit.Decision) *Error {
	l := limitOf(d.Which)
	return &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Limit: l, RetryAfter: d.RetryAfter, rate: d,
		Detail: "The API key is over its " + limitName(l) + " rate limit. Retry after the number of seconds in Retry-After."}
}

// quotaExceeded is the 429 of a key over the monthly quota of q, which
// resets at the start of the next UTC month; rate is the rate limit that
// let it through.
func quotaExceeded(q, rate limit.Decision, now time.Time) *Error {
	l := limitOf(q.Which)
	return &Error{Status: http.StatusTooManyRequests, Code: CodeQuotaExceeded, Limit: l, RetryAfter: keyrules.NextMonth(now).Sub(now), rate: rate,
		Detail: "The API key has used its " + limitName(l) + " monthly quota of " + strconv.FormatInt(q.Limit, 10) +
			" requests; it resets at the start of the next UTC month."}
}

// shuttingDown is the 503 of a request that arrives once Close has begun.
func shuttingDown() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeShuttingDown, RetryAfter: storeRetryBackoff,
		Detail: "This instance is shutting down. Retry now."}
}

// limitName says whose limit applied: the key's own, or its owner's plan,
// shared by all the owner's keys.
func limitName(l Limit) string {
	switch l {
	case LimitOwner:
		return "owner's"
	case LimitManagement:
		return "management"
	}
	return "own"
}
