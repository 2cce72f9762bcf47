package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keygate/keygate"
)

// scopePattern is the form of a scope: resource:action.
var scopePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$`)

const (
	maxOwnerLen = 128 // characters
	maxNameLen  = 100 // characters
)

// parseScopes parses the value of --scopes: a comma-separated list of known
// scopes, without duplicates, with the whitespace around each trimmed. An
// empty value is an empty list, never nil.
func parseScopes(s string) ([]string, error) {
	scopes := []string{}
	if strings.TrimSpace(s) == "" {
		return scopes, nil
	}
	known := strings.Join(keygate.KnownScopes, ", ")
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			return nil, fmt.Errorf("--scopes %q has an empty item; known scopes: %s", s, known)
		case !scopePattern.MatchString(item):
			return nil, fmt.Errorf("malformed scope %q: want resource:action in lowercase letters, digits and '_'; known scopes: %s", item, known)
		}
		scopes = append(scopes, item)
	}
	if err := keygate.ValidateScopes(scopes); err != nil {
		return nil, err
	}
	return scopes, nil
}

// parseExpires parses the value of --expires: empty for never (0), else a Go
// duration greater than zero.
func parseExpires(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: want a Go duration greater than 0, such as 720h (30 days) or 90m", s)
	}
	return d, nil
}

// checkOwner checks the value of --owner: 1 to 128 characters, none of them a
// control character.
func checkOwner(s string) error { return checkText("owner", s, 1, maxOwnerLen) }

// checkName checks the value of --name, as the function checks names.
func checkName(s string) error {
	if err := keygate.ValidateName(s); err != nil {
		return fmt.Errorf("--name %w", err)
	}
	return nil
}

// checkText checks that the value of the flag name is UTF-8 text of min to
// max characters without control characters.
func checkText(name, s string, min, max int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("--%s is not valid UTF-8", name)
	}
	if n := utf8.RuneCountInString(s); n < min || n > max {
		if min == 0 {
			return fmt.Errorf("--%s is %d characters long: want at most %d", name, n, max)
		}
		return fmt.Errorf("--%s is %d characters long: want %d to %d", name, n, min, max)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("--%s contains the control character %U", name, r)
	}
	return nil
}

// checkID checks that id is a key ID. Given a key of the configured prefix
// instead (say, a leaked one to revoke), it says so and gives the key's ID,
// without repeating the key.
func checkID(id, prefix string) error {
	if keygate.ValidKeyID(id) {
		return nil
	}
	if keygate.ParseKey(id, prefix) == nil {
		return fmt.Errorf("that is an API key, not a key ID; its key ID is %s", keygate.KeyID(id))
	}
	if keyLike.MatchString(id) || len(id) > 2*keygate.MaxKeyLen {
		return fmt.Errorf("invalid key ID: want 64 lowercase hex digits, as printed by create and list")
	}
	return fmt.Errorf("invalid key ID %q: want 64 lowercase hex digits, as printed by create and list", id)
}
