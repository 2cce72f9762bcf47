// Package leak finds pieces of API keys in text, for the tests that check
// that logs never hold a key. It is apart from package testkit because
// package logging's own tests need it, and testkit imports logging.
package leak

import "strings"

// Piece is the length of the shortest piece of a key that counts as a
// leak: long enough that no hint (prefix and last four characters) or
// other innocent text holds one by chance.
const Piece = 12

// In returns the first Piece-character piece of any of keys, named by
// their map keys, that text holds, and that key's name; "" when there is
// none.
func In(text string, keys map[string]string) (piece, name string) {
	return InN(text, keys, Piece)
}

// InN is In with pieces of n characters: the events' check takes 8, since
// an event holds a key's hint (the prefix and 4 characters, 7 in a row)
// and else only hexadecimal IDs.
func InN(text string, keys map[string]string, n int) (piece, name string) {
	for name, key := range keys {
		for i := 0; i+n <= len(key); i++ {
			if p := key[i : i+n]; strings.Contains(text, p) {
				return p, name
			}
		}
	}
	return "", ""
}
