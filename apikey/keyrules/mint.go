package keyrules

import (
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/store"
)

// Mint mints a key with prefix and returns it with k made ready to store:
// its ID and Hint set from the new key. The key itself is shown once to its
// owner and never stored.
func Mint(prefix string, k store.Key) (string, store.Key, error) {
	key, err := keyformat.New(prefix)
	if err != nil {
		return "", store.Key{}, err
	}
	k.ID = keyformat.ID(key)
	k.Hint = keyformat.Hint(key)
	return key, k, nil
}

// Replacement returns the key that rotating k mints at now, before its ID
// and hint are set (see Mint): k's owner, name, scopes, expiry and limits.
func Replacement(k store.Key, now time.Time) store.Key {
	return store.Key{Owner: k.Owner, Name: k.Name, Scopes: k.Scopes, CreatedAt: now, ExpiresAt: k.ExpiresAt,
		RateLimit: k.RateLimit, Burst: k.Burst, MonthlyQuota: k.MonthlyQuota}
}
