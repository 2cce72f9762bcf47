package billing

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// Identifier is the meter event's identifier for an owner's day exported
// from from on, by an attempt recorded at sent: "kg-" and the SHA-256 of
// the four, 67 characters (Stripe takes 100). It holds no key material,
// and names one value only: a day's exported amount moves only up, one
// attempt is recorded per amount at a time, and an attempt abandoned
// ('apikey billing settle --not-applied') is followed by one recorded
// later. A zero sent gives the identifiers of the records kept before
// Sent was.
func Identifier(owner string, day store.Day, from int64, sent time.Time) string {
	parts := []string{owner, string(day), strconv.FormatInt(from, 10)}
	if !sent.IsZero() {
		parts = append(parts, strconv.FormatInt(sent.UnixMicro(), 10))
	}
	h := sha256.New()
	for _, part := range parts {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "kg-" + hex.EncodeToString(h.Sum(nil))
}
