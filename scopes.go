package keygate

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
)

// The scopes a key can hold. Each route needs at most one.
const (
	// ScopeBingoCheck allows POST /v1/bingo/check.
	ScopeBingoCheck = "bingo:check"
	// ScopeUsageRead allows reading the key's own usage.
	ScopeUsageRead = "usage:read"
	// ScopeKeysManage allows the owner's key-management endpoints.
	ScopeKeysManage = "keys:manage"
)

// KnownScopes are every scope keygate knows.
var KnownScopes = []string{ScopeBingoCheck, ScopeUsageRead, ScopeKeysManage}

// DefaultScopes are the scopes of a key whose stored scopes are absent or
// empty.
var DefaultScopes = []string{ScopeBingoCheck, ScopeUsageRead}

// ValidateScopes checks that every scope is known and none is repeated. The
// error quotes the scope shortened: the API answers it, twice.
func ValidateScopes(scopes []string) error {
	for i, s := range scopes {
		if !slices.Contains(KnownScopes, s) {
			return fmt.Errorf("unknown scope %s; known scopes: %s", quoteShort(s), strings.Join(KnownScopes, ", "))
		}
		if slices.Contains(scopes[:i], s) {
			return fmt.Errorf("scope %s is listed twice", quoteShort(s))
		}
	}
	return nil
}

// GrantedScopes are the scopes k grants: its stored scopes, or DefaultScopes
// when it has none.
func (k *Key) GrantedScopes() []string {
	if len(k.Scopes) == 0 {
		return DefaultScopes
	}
	return k.Scopes
}

// HasScope reports whether k grants scope.
func (k *Key) HasScope(scope string) bool {
	return slices.Contains(k.GrantedScopes(), scope)
}

// missingScope returns the first of scopes that k does not grant, or "".
func (k *Key) missingScope(scopes []string) string {
	for _, s := range scopes {
		if !k.HasScope(s) {
			return s
		}
	}
	return ""
}

// requireScope wraps next so that only a key granting scope reaches it;
// others get 403 insufficient_scope naming the scope, and a WARNING entry.
// An empty scope lets every verified key through.
func (a *Authenticator) requireScope(scope string, next http.HandlerFunc) http.HandlerFunc {
	if scope == "" {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		k := callerOf(r)
		if !k.HasScope(scope) {
			logRequest(r.Context(), a.log, slog.LevelWarn, r, a.project, "request refused",
				slog.String("reason", "insufficient_scope"), slog.String("scope", scope), slog.String("key_hint", k.Hint))
			writeProblem(w, insufficientScope(scope))
			return
		}
		next(w, r)
	}
}

// insufficientScope is the 403 problem for a key that lacks scope.
func insufficientScope(scope string) *Problem {
	p := newProblem(http.StatusForbidden, "insufficient_scope", "This API key lacks the scope "+scope+".")
	p.Scope = scope
	return p
}
