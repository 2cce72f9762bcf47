package keyrules

import (
	"fmt"
	"slices"

	"github.com/keygate/keygate/internal/problem"
)

// MaxScopes is the most scopes a key may hold, and MaxScopeLen the longest
// scope name, in bytes.
const (
	MaxScopes   = 32
	MaxScopeLen = 64
)

// ValidScope reports whether s is a well-formed scope name: words of
// lowercase letters, digits, '_', '-' and '.', each starting with a letter
// or digit, joined by ':', at most MaxScopeLen bytes, such as "things:read"
// or "billing". Scopes belong to the application: keygate knows none in
// advance and checks only their form.
func ValidScope(s string) bool {
	if s == "" || len(s) > MaxScopeLen {
		return false
	}
	start := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			start = false
		case (c == '_' || c == '-' || c == '.') && !start:
		case c == ':' && !start:
			start = true
		default:
			return false
		}
	}
	return !start
}

// ValidateScopes checks a key's scopes: at most MaxScopes, each well formed
// (see ValidScope), none repeated. The error quotes the scope shortened:
// the API answers it.
func ValidateScopes(scopes []string) error {
	if len(scopes) > MaxScopes {
		return fmt.Errorf("%d scopes: want at most %d", len(scopes), MaxScopes)
	}
	for i, s := range scopes {
		if !ValidScope(s) {
			return fmt.Errorf("scope %s is not a scope name: want words of a-z, 0-9, '_', '-' and '.' joined by ':', at most %d bytes, such as things:read", problem.QuoteShort(s), MaxScopeLen)
		}
		if slices.Contains(scopes[:i], s) {
			return fmt.Errorf("scope %s is listed twice", problem.QuoteShort(s))
		}
	}
	return nil
}
