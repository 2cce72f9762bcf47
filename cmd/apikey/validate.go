package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// scopePattern is the form of a scope: resource:action.
var scopePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$`)

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
	if err := store.ValidateScopes(scopes); err != nil {
		return nil, err
	}
	return scopes, nil
}

// parseExpires parses the value of --expires: empty for never (0), else a
// lifetime as the API's expires_in takes it (keygate.ParseLifetime).
func parseExpires(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := store.ParseLifetime(s)
	if err != nil {
		return 0, fmt.Errorf("--expires %w", err)
	}
	return d, nil
}

// parseGrace parses the value of --grace as the API's grace.
func parseGrace(s string) (time.Duration, error) {
	d, err := store.ParseGrace(s)
	if err != nil {
		return 0, fmt.Errorf("--grace %w", err)
	}
	return d, nil
}

// checkLimits checks --rate, --burst and --quota with the function's bounds;
// the flags have the names keygate.LimitError gives the fields.
func checkLimits(rate float64, burst int, quota int64) error {
	if err := store.ValidateLimits(rate, burst, quota); err != nil {
		return fmt.Errorf("--%w", err)
	}
	if burst > 0 && rate == 0 {
		return errors.New("--burst needs --rate") // else the burst would be ignored
	}
	return nil
}

// checkOwner checks the value of --owner as keygate.ValidateOwner does.
func checkOwner(s string) error {
	if err := store.ValidateOwner(s); err != nil {
		return fmt.Errorf("--owner %w", err)
	}
	return nil
}

// checkName checks the value of --name, as the function checks names.
func checkName(s string) error {
	if err := store.ValidateName(s); err != nil {
		return fmt.Errorf("--name %w", err)
	}
	return nil
}

// checkID checks that id is a key ID. Given a key of the configured prefix
// instead (say, a leaked one to revoke), it says so and gives the key's ID,
// without repeating the key.
func checkID(id, prefix string) error {
	if keyformat.ValidID(id) {
		return nil
	}
	if keyformat.Parse(id, prefix) == nil {
		return fmt.Errorf("that is an API key, not a key ID; its key ID is %s", keyformat.ID(id))
	}
	if keyLike.MatchString(id) || len(id) > 2*keyformat.MaxLen {
		return fmt.Errorf("invalid key ID: want 64 lowercase hex digits, as printed by create and list")
	}
	return fmt.Errorf("invalid key ID %q: want 64 lowercase hex digits, as printed by create and list", id)
}
