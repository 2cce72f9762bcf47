package keyformat

import (
	"fmt"
	"regexp"
)

// Pattern is the regular expression that finds keys with prefix in text,
// for secret scanners (GitHub's partner program asks its issuers for one):
// the prefix, '_', and the body and checksum's BodyLen+ChecksumLen base62
// characters, between word boundaries so that a longer word does not
// match. A match may still fail Parse: a regular expression cannot check
// the CRC-32, which the issuer's endpoint does.
func Pattern(prefix string) string {
	return fmt.Sprintf(`\b%s_[0-9A-Za-z]{%d}\b`, regexp.QuoteMeta(prefix), BodyLen+ChecksumLen)
}
