package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
)

// The flags are checked by the library's validators, the same the keys API
// uses (package store); these functions only split the flags' text and name
// the flag in the message.

// parseScopes parses the value of --scopes: a comma-separated list of scope
// names, with the whitespace around each trimmed, checked by
// keyrules.ValidateScopes. Scopes belong to the application, so any
// well-formed name is accepted. An empty value is an empty list, never nil.
func parseScopes(s string) ([]string, error) {
	scopes := []string{}
	if strings.TrimSpace(s) == "" {
		return scopes, nil
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("--scopes %q has an empty item", s)
		}
		scopes = append(scopes, item)
	}
	if err := keyrules.ValidateScopes(scopes); err != nil {
		return nil, err
	}
	return scopes, nil
}

// parseExpires parses the value of --expires: empty for never (0), else a
// lifetime as the API's expires_in takes it (keyrules.ParseLifetime).
func parseExpires(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := keyrules.ParseLifetime(s)
	if err != nil {
		return 0, fmt.Errorf("--expires %w", err)
	}
	return d, nil
}

// parseGrace parses the value of --grace as the API's grace
// (keyrules.ParseGrace).
func parseGrace(s string) (time.Duration, error) {
	d, err := keyrules.ParseGrace(s)
	if err != nil {
		return 0, fmt.Errorf("--grace %w", err)
	}
	return d, nil
}

// checkLimits checks --rate, --burst and --quota with keyrules.ValidateLimits;
// the flags have the names keyrules.LimitError gives the fields.
func checkLimits(rate float64, burst int, quota int64) error {
	if err := keyrules.ValidateLimits(rate, burst, quota); err != nil {
		return fmt.Errorf("--%w", err)
	}
	if burst > 0 && rate == 0 {
		// A key's burst applies to its own rate only (Key.EffectiveBurst):
		// without one it would be stored and ignored.
		return errors.New("--burst needs --rate")
	}
	return nil
}

// checkOwner checks the value of --owner with keyrules.ValidateOwner.
func checkOwner(s string) error {
	if err := keyrules.ValidateOwner(s); err != nil {
		return fmt.Errorf("--owner %w", err)
	}
	return nil
}

// checkName checks the value of --name with keyrules.ValidateName, as the API
// checks names.
func checkName(s string) error {
	if err := keyrules.ValidateName(s); err != nil {
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
