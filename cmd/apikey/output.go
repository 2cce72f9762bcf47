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

// keyView is the JSON of a stored key, as show and list print it. It has no
// field for the key itself, which is never stored.
type keyView struct {
	ID        string     `json:"id"`
	Owner     string     `json:"owner"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Hint      string     `json:"hint"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"` // null: never
	RevokedAt *time.Time `json:"revoked_at"` // null: not revoked
	Status    string     `json:"status"`     // at the time of the command
}

// createdView is the JSON that create prints: the new key, then the key's
// view.
type createdView struct {
	Key string `json:"key"`
	keyView
}

// viewOf returns the JSON view of k at time now.
func viewOf(k keygate.Key, now time.Time) keyView {
	v := keyView{
		ID:        k.ID,
		Owner:     k.Owner,
		Name:      k.Name,
		Scopes:    k.Scopes,
		Hint:      k.Hint,
		CreatedAt: k.CreatedAt.UTC(),
		Status:    k.Status(now),
	}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt.UTC()
		v.ExpiresAt = &t
	}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt.UTC()
		v.RevokedAt = &t
	}
	return v
}

// writeJSON writes v to w as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeDetails writes k as labelled lines, for create (on stderr) and show.
func writeDetails(w io.Writer, k keygate.Key, now time.Time) {
	revoked := "-"
	if !k.RevokedAt.IsZero() {
		revoked = formatTime(k.RevokedAt)
	}
	fmt.Fprintf(w, "id:       %s\n", clean(k.ID))
	fmt.Fprintf(w, "owner:    %s\n", clean(k.Owner))
	fmt.Fprintf(w, "name:     %s\n", orDash(clean(k.Name)))
	fmt.Fprintf(w, "scopes:   %s\n", scopeText(k.Scopes, "(none: the function grants the defaults "+strings.Join(defaultScopes, ",")+")"))
	fmt.Fprintf(w, "hint:     %s\n", clean(k.Hint))
	fmt.Fprintf(w, "created:  %s\n", formatTime(k.CreatedAt))
	fmt.Fprintf(w, "expires:  %s\n", orNever(k.ExpiresAt))
	fmt.Fprintf(w, "revoked:  %s\n", revoked)
	fmt.Fprintf(w, "status:   %s\n", k.Status(now))
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

// clean replaces control characters in a stored string with U+FFFD before it
// is printed as text, so that a document written by other means cannot break
// the table or send escape sequences to the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}
