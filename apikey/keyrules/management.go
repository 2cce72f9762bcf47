package keyrules

import (
	"fmt"
	"strconv"
)

// The management budget of an owner: what the keys API (KeysHandlers:
// create, list, get, revoke, rotate, usage, whoami) serves all the
// owner's keys together, per instance, or across instances with Redis.
// One budget per owner, not per key, so that no chain of keys made
// through the API (a key rotating itself, a key minting children) brings
// a fresh one. Every management call takes one of ManageRate; a mint (a
// create or a rotation: each makes a key) takes one of the owner's mints
// too.
//
// A mint writes the owner's key-count document (firestorestore's
// keycount.go), which like any Firestore document sustains about one
// write a second: DefaultMintRate is that second, and DefaultMintBurst a
// batch of new keys at once. A revocation is no mint: it writes only the
// revoked key's own documents and makes nothing, so a bulk revocation
// takes the management budget alone, up to ManageBurst keys at once. A plan
// may raise the mints (mint_rate, mint_burst) up to the management budget
// itself, which they draw from.
const (
	ManageRate       = 20  // management calls per second per owner
	ManageBurst      = 100 // management calls at once per owner
	DefaultMintRate  = 1   // creates and rotations per second per owner
	DefaultMintBurst = 20  // creates and rotations at once per owner
)

// ValidateMints checks a plan's mints: a rate of 0 (the default)
// or MinRateLimit to ManageRate per second, a burst of 0 (the default) to
// ManageBurst. The error is a *LimitError, Field "mint-rate" or
// "mint-burst".
func ValidateMints(rate float64, burst int) error {
	switch {
	case rate != 0 && !(rate >= MinRateLimit && rate <= ManageRate): // NaN fails both
		return &LimitError{"mint-rate", strconv.FormatFloat(rate, 'g', -1, 64),
			fmt.Sprintf("0 (the default, %d) or %g to %d creates and rotations per second", DefaultMintRate, MinRateLimit, ManageRate)}
	case burst < 0 || burst > ManageBurst:
		return &LimitError{"mint-burst", strconv.Itoa(burst), fmt.Sprintf("0 (the default, %d) to %d creates and rotations", DefaultMintBurst, ManageBurst)}
	}
	return nil
}
