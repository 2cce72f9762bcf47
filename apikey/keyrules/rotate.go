package keyrules

import (
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// Rotated returns old replaced by replacement: its expiry moved to
// graceEnd, unless it expires earlier, and its ReplacedBy set, after
// checking that it is active at now (replacement.CreatedAt) and not
// replaced already by successor, the stored key old.ReplacedBy names (nil
// if old has no ReplacedBy or that key is gone): store.ErrKeyInactive,
// store.ErrKeyReplaced. Every store's Rotate applies it, inside its
// transaction.
func Rotated(old store.Key, successor *store.Key, replacement store.Key, graceEnd time.Time) (store.Key, error) {
	now := replacement.CreatedAt
	if old.Status(now) != store.StatusActive {
		return store.Key{}, store.ErrKeyInactive
	}
	if successor != nil && successor.Status(now) == store.StatusActive {
		return store.Key{}, store.ErrKeyReplaced
	}
	if old.ExpiresAt.IsZero() || graceEnd.Before(old.ExpiresAt) {
		old.ExpiresAt = store.StoredTime(graceEnd)
	}
	old.ReplacedBy = replacement.ID
	return old, nil
}

// OverCap reports whether an owner holding active keys, active at the time
// of a rotation, is refused it by the cap maxActive: whether it holds more
// than maxActive, so that another rotation's replacement is out already.
func OverCap(active, maxActive int) bool { return active > maxActive }

// Capped reports whether the rotation that made rotated (the old key as
// Rotated returns it) at now is one the cap may refuse: one that leaves the
// old key active for a grace. Without a grace the replacement takes the
// old key's place at once and adds no active key, so even an owner past
// its cap (its plan lowered, say) can replace a leaked key in one step.
func Capped(rotated store.Key, now time.Time) bool { return rotated.Status(now) == store.StatusActive }
