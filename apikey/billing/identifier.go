package billing

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/keygate/keygate/apikey/store"
)

// Identifier is the meter event's identifier for an owner's day exported
// from from on: "kg-" and the SHA-256 of the three, 67 characters (Stripe
// takes 100). It holds no key material, and names one value only: a day's
// exported amount moves only up, and one attempt is recorded per amount.
func Identifier(owner string, day store.Day, from int64) string {
	h := sha256.New()
	for _, part := range []string{owner, string(day), strconv.FormatInt(from, 10)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "kg-" + hex.EncodeToString(h.Sum(nil))
}
