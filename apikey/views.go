package apikey

import "time"

// KeyView is a key as keygate shows it, in JSON, to its owner or operator:
// never the key itself, which is not stored.
type KeyView struct {
	ID     string   `json:"id"`
	Owner  string   `json:"owner"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"` // the granted scopes: the defaults when none are stored
	Hint   string   `json:"hint"`
	// CreatedAt, ExpiresAt and RevokedAt are RFC 3339 in UTC; null expires_at
	// means never, null revoked_at not revoked.
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	// LastUsedAt is when the key was last used, to the usage flush
	// (USAGE_FLUSH_INTERVAL); null if never since keygate records it.
	LastUsedAt *time.Time `json:"last_used_at"`
	// Status is active, expired or revoked, at the time of the view.
	Status string `json:"status"`
	// ReplacedBy is the ID of the key that replaced this one by rotation,
	// absent if none did.
	ReplacedBy string `json:"replaced_by,omitempty"`
	// LeakedAt is when GitHub's secret scanning reported the key found in
	// public, and LeakURL where; absent if it never did. Such a key is
	// revoked then, unless LEAKED_KEY_ACTION is notify.
	LeakedAt *time.Time `json:"leaked_at,omitempty"`
	LeakURL  string     `json:"leak_url,omitempty"`
	// RateLimit, Burst and MonthlyQuota are the key's own limits, absent
	// when it has none.
	RateLimit    float64 `json:"rate_limit,omitempty"`
	Burst        int     `json:"burst,omitempty"`
	MonthlyQuota int64   `json:"monthly_quota,omitempty"`
}

// NewKeyView is the view of a key just minted: the only one that holds the
// key.
type NewKeyView struct {
	Key string `json:"key"`
	KeyView
}

// ViewOf returns the view of k at time now, showing defaultScopes as its
// scopes when it has none (Config.DefaultScopes).
func ViewOf(k Key, now time.Time, defaultScopes []string) KeyView {
	v := KeyView{ID: k.ID, Owner: k.Owner, Name: k.Name, Scopes: grantedScopes(&k, defaultScopes), Hint: k.Hint,
		CreatedAt: k.CreatedAt.UTC(), Status: string(k.Status(now)),
		RateLimit: k.RateLimit, Burst: k.Burst, MonthlyQuota: k.MonthlyQuota, ReplacedBy: k.ReplacedBy}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt.UTC()
		v.ExpiresAt = &t
	}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt.UTC()
		v.RevokedAt = &t
	}
	if !k.LastUsedAt.IsZero() {
		t := k.LastUsedAt.UTC()
		v.LastUsedAt = &t
	}
	if !k.LeakedAt.IsZero() {
		t := k.LeakedAt.UTC()
		v.LeakedAt, v.LeakURL = &t, k.LeakURL
	}
	return v
}
