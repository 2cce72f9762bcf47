package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/view"
)

// bingoDefaultScopes are the default scopes of the bingo function (package
// keygate's DefaultScopes), named in the help and output about keys without
// scopes as an example; apikey does not import the function to learn them.
const bingoDefaultScopes = "bingo:check,usage:read"

// bingoScopes are all the bingo function's scopes, the KEY_SCOPES it
// checks, named in create's help as an example.
const bingoScopes = bingoDefaultScopes + ",keys:manage"

// defaultScopes are the scopes the configuration says a key stored without
// any grants (KEY_DEFAULT_SCOPES): never nil, so that a view shows [] rather
// than null when the variable is unset.
func (c *cli) defaultScopes() []string {
	if c.cfg == nil || c.cfg.DefaultScopes == nil {
		return []string{}
	}
	return c.cfg.DefaultScopes
}

// view is the view of k at now, as the keys API shows it: a key stored
// without scopes shows the default scopes.
func (c *cli) view(k store.Key, now time.Time) view.KeyView {
	return view.Of(k, now, c.defaultScopes())
}

// noScopesText is what the details say of a key stored without scopes.
func (c *cli) noScopesText() string {
	if d := c.defaultScopes(); len(d) > 0 {
		return "(none: it gets the default scopes, KEY_DEFAULT_SCOPES=" + clean(strings.Join(d, ",")) + ")"
	}
	return "(none: it gets the application's default scopes, KEY_DEFAULT_SCOPES, unset here; for the bingo function: " + bingoDefaultScopes + ")"
}

// writeJSON writes v to w as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeDetails writes k as labelled lines, for create (on stderr) and show.
func (c *cli) writeDetails(w io.Writer, k store.Key, now time.Time) {
	revoked := "-"
	if !k.RevokedAt.IsZero() {
		revoked = formatTime(k.RevokedAt)
	}
	fmt.Fprintf(w, "id:       %s\n", clean(k.ID))
	fmt.Fprintf(w, "owner:    %s\n", clean(k.Owner))
	fmt.Fprintf(w, "name:     %s\n", orDash(clean(k.Name)))
	fmt.Fprintf(w, "scopes:   %s\n", scopeText(k.Scopes, c.noScopesText()))
	fmt.Fprintf(w, "hint:     %s\n", clean(k.Hint))
	fmt.Fprintf(w, "created:  %s\n", formatTime(k.CreatedAt))
	fmt.Fprintf(w, "expires:  %s\n", orNever(k.ExpiresAt))
	fmt.Fprintf(w, "revoked:  %s\n", revoked)
	fmt.Fprintf(w, "last use: %s\n", lastUse(k.LastUsedAt))
	fmt.Fprintf(w, "status:   %s\n", statusText(k, now))
	if !k.LeakedAt.IsZero() {
		fmt.Fprintf(w, "leaked:   %s at %s\n", formatTime(k.LeakedAt), orDash(clean(k.LeakURL)))
	}
	if k.ReplacedBy != "" {
		fmt.Fprintf(w, "replaced: by %s\n", clean(k.ReplacedBy))
	}
	if k.RateLimit > 0 {
		fmt.Fprintf(w, "rate:     %g/s, burst %d\n", k.RateLimit, k.Burst)
	}
	if k.MonthlyQuota > 0 {
		fmt.Fprintf(w, "quota:    %d requests a month\n", k.MonthlyQuota)
	}
}

// statusText is k's status at now and, for a key found in public, why:
// "revoked: found in public at URL".
func statusText(k store.Key, now time.Time) string {
	if k.LeakedAt.IsZero() {
		return string(k.Status(now))
	}
	return string(k.Status(now)) + ": found in public at " + orDash(clean(k.LeakURL))
}

// formatTime formats t for people: RFC 3339 in UTC, to the second.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// orNever formats an expiry time; zero is "never".
func orNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return formatTime(t)
}

// lastUse formats a last-used time; zero is "never" (or not since keygate
// records it).
func lastUse(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return formatTime(t)
}

// orDash returns s, or "-" for the empty string.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// scopeText joins scopes with commas; an empty list is none.
func scopeText(scopes []string, none string) string {
	if len(scopes) == 0 {
		return none
	}
	return clean(strings.Join(scopes, ","))
}

// clean replaces hidden characters (keyrules.IsHidden) in a stored string
// with U+FFFD before it is printed as text, so that a document written by
// other means cannot break the table, send escape sequences to the terminal
// or reorder what is shown.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if keyrules.IsHidden(r) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}
