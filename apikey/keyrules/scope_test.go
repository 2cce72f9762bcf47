package keyrules

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// scopeSyntax is the reference for ValidScope, written as the README
// states it: words of a-z, 0-9, '_', '-' and '.', each starting with a
// letter or digit, joined by ':'; and at most MaxScopeLen bytes.
var scopeSyntax = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*(:[a-z0-9][a-z0-9_.-]*)*$`)

func validScopeReference(s string) bool { return len(s) <= MaxScopeLen && scopeSyntax.MatchString(s) }

func TestValidScope(t *testing.T) {
	for _, s := range []string{
		"a", "0", "billing", "things:read", "bingo:check", "usage:read", "keys:manage",
		"a:b:c", "things.v2:read", "billing_export:all-time", "a-:b_", "x.y.z", "9:9",
		strings.Repeat("a", MaxScopeLen),
		strings.Repeat("a:", MaxScopeLen/2-1) + "ab", // 64 bytes of short words
	} {
		if !ValidScope(s) {
			t.Errorf("ValidScope(%q) = false, want true", s)
		}
	}
	for _, s := range []string{
		"", ":", "::", "a:", ":a", "a::b", "A", "Things:read", "things:Read",
		"things read", " things", "things\t", "things\n", "a/b", "a*", "a:*", "*",
		"_a", "-a", ".a", "a:_b", "a:-b", "a:.b", "a,b", "a;b", "a=b", "a\x00",
		"thïngs", "ａ", "a\u200bb", "a\u202e",
		strings.Repeat("a", MaxScopeLen+1),
		strings.Repeat("a:", MaxScopeLen/2) + "a", // 65 bytes
	} {
		if ValidScope(s) {
			t.Errorf("ValidScope(%q) = true, want false", s)
		}
	}
}

func TestValidateScopes(t *testing.T) {
	var many []string
	for i := range MaxScopes + 1 {
		many = append(many, fmt.Sprintf("s%d", i))
	}
	big := strings.Repeat("X", 10_000)
	for _, c := range []struct {
		name   string
		scopes []string
		err    string // "": valid; else in the error
	}{
		{"none", nil, ""},
		{"one", []string{"things:read"}, ""},
		{"the most", many[:MaxScopes], ""},
		{"too many", many, "33 scopes: want at most 32"},
		{"malformed", []string{"things:read", "Things:Read"}, `scope "Things:Read" is not a scope name`},
		{"repeated", []string{"a", "b", "a"}, `scope "a" is listed twice`},
		{"long and malformed", []string{big}, "is not a scope name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateScopes(c.scopes)
			switch {
			case c.err == "" && err != nil:
				t.Errorf("ValidateScopes(%q) = %v, want nil", c.scopes, err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("ValidateScopes = %v, want an error with %q", err, c.err)
			case err != nil && len(err.Error()) > 300:
				// The API answers the error: it quotes the scope shortened.
				t.Errorf("error of %d bytes: %.100s", len(err.Error()), err)
			}
		})
	}
}

// FuzzValidScope checks ValidScope against the regexp reference, and that
// ValidateScopes agrees with it on one scope.
func FuzzValidScope(f *testing.F) {
	for _, s := range []string{"", "a", "things:read", "a::b", "a:", ":a", "A", "a-b_c.d:e", "_a", "a:.b", "thïngs",
		strings.Repeat("a", MaxScopeLen), strings.Repeat("a", MaxScopeLen+1), strings.Repeat("ab:", 22)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := validScopeReference(s)
		if got := ValidScope(s); got != want {
			t.Fatalf("ValidScope(%q) = %v, reference %v", s, got, want)
		}
		if err := ValidateScopes([]string{s}); (err == nil) != want {
			t.Fatalf("ValidateScopes([%q]) = %v, reference %v", s, err, want)
		}
	})
}
