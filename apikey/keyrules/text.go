package keyrules

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest key name, and MaxOwnerLen the longest owner, in
// characters.
const (
	MaxNameLen  = 100
	MaxOwnerLen = 128
)

// ValidateName checks a key name: at most MaxNameLen characters of valid
// UTF-8, none of them hidden (see IsHidden).
func ValidateName(name string) error { return validateText(name, 0, MaxNameLen) }

// ValidateOwner checks an owner as ValidateName checks a name, but with 1 to
// MaxOwnerLen characters, and so that it is a Firestore document ID (the
// owner's plan is the document {KEYS_COLLECTION}_owners/{owner}): no '/',
// not "." or "..", and not of the form __...__ (at least 4 characters that
// start and end with "__", which Firestore reserves). MaxOwnerLen characters
// of UTF-8 are at most 512 bytes, within Firestore's 1500.
func ValidateOwner(owner string) error {
	if err := validateText(owner, 1, MaxOwnerLen); err != nil {
		return err
	}
	switch {
	case strings.Contains(owner, "/"):
		return errors.New("contains '/'")
	case owner == "." || owner == "..":
		return fmt.Errorf("is %q: want a name other than . and ..", owner)
	case len(owner) >= 4 && strings.HasPrefix(owner, "__") && strings.HasSuffix(owner, "__"):
		return errors.New("starts and ends with \"__\", which Firestore reserves")
	}
	return nil
}

// validateText checks that s is UTF-8 of lo to hi characters, none hidden.
// The error starts with a verb, for the caller to prefix the field's name.
func validateText(s string, lo, hi int) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n < lo || n > hi {
		if lo == 0 {
			return fmt.Errorf("is %d characters long: want at most %d", n, hi)
		}
		return fmt.Errorf("is %d characters long: want %d to %d", n, lo, hi)
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return fmt.Errorf("contains the control character %U", r)
		case unicode.Is(unicode.Cf, r):
			return fmt.Errorf("contains the invisible format character %U", r)
		}
	}
	return nil
}

// IsHidden reports whether r is a control character or a Unicode format
// character (category Cf, such as U+202E RIGHT-TO-LEFT OVERRIDE or U+200B
// ZERO WIDTH SPACE): characters that can move a cursor, reorder or hide
// text, so that a name could pass for another in a log, a table or a
// terminal. Names and owners may hold none; the CLI replaces any in a stored
// document before printing it.
func IsHidden(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }
