package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/keygate/keygate"
)

// writeJSON writes v to w as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeDetails writes k as labelled lines, for create (on stderr) and show.
func writeDetails(w io.Writer, k store.Key, now time.Time) {
	revoked := "-"
	if !k.RevokedAt.IsZero() {
		revoked = formatTime(k.RevokedAt)
	}
	fmt.Fprintf(w, "id:       %s\n", clean(k.ID))
	fmt.Fprintf(w, "owner:    %s\n", clean(k.Owner))
	fmt.Fprintf(w, "name:     %s\n", orDash(clean(k.Name)))
	fmt.Fprintf(w, "scopes:   %s\n", scopeText(k.Scopes, "(none: the function grants the defaults "+strings.Join(keygate.DefaultScopes, ",")+")"))
	fmt.Fprintf(w, "hint:     %s\n", clean(k.Hint))
	fmt.Fprintf(w, "created:  %s\n", formatTime(k.CreatedAt))
	fmt.Fprintf(w, "expires:  %s\n", orNever(k.ExpiresAt))
	fmt.Fprintf(w, "revoked:  %s\n", revoked)
	fmt.Fprintf(w, "status:   %s\n", k.Status(now))
	if k.RateLimit > 0 {
		fmt.Fprintf(w, "rate:     %g/s, burst %d\n", k.RateLimit, k.Burst)
	}
	if k.MonthlyQuota > 0 {
		fmt.Fprintf(w, "quota:    %d requests a month\n", k.MonthlyQuota)
	}
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

// clean replaces hidden characters (keygate.IsHidden) in a stored string
// with U+FFFD before it is printed as text, so that a document written by
// other means cannot break the table, send escape sequences to the terminal
// or reorder what is shown.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if store.IsHidden(r) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}
