// Package view holds the JSON views of keys and usage that the keys API,
// the usage endpoints and the CLI print: one shape for all three.
// docs/api.md documents every member.
package view

import (
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// KeyView is a key as keygate shows it to its owner or operator: never the
// key itself, which is not stored.
type KeyView struct {
	ID     string   `json:"id"`
	Owner  string   `json:"owner"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"` // the granted scopes: the defaults when none are stored
	Hint   string   `json:"hint"`
	// CreatedAt, ExpiresAt and RevokedAt are RFC 3339 in UTC; null expires_at
	// means never, null revoked_at not revoked. CreatedBy is the ID of the
	// key that made this one through the keys API, absent for a key the
	// operator made.
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by,omitempty"`
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
	// public, and LeakURL where; absent if it never did.
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

// RotatedKeyView is the view of a rotation: the new key, and the key it
// replaces with its new expiry.
type RotatedKeyView struct {
	NewKeyView
	Replaces KeyView `json:"replaces"`
}

// UsageView is a key's usage: GET /v1/usage and "apikey usage" print it.
type UsageView struct {
	KeyID        string           `json:"key_id"`
	Month        store.Month      `json:"month"`
	MonthTotal   int64            `json:"month_total"`
	MonthlyQuota *int64           `json:"monthly_quota"`
	From         store.Day        `json:"from"`
	To           store.Day        `json:"to"`
	Days         []store.DayUsage `json:"days"`
	// Owner is the usage of the key's owner, all its keys together, against
	// its plan; the endpoints always show it, the CLI does not.
	Owner *OwnerUsageView `json:"owner,omitempty"`
}

// OwnerUsageView is an owner's usage this month against its plan's quota
// (null for none).
type OwnerUsageView struct {
	Owner        string `json:"owner"`
	MonthTotal   int64  `json:"month_total"`
	MonthlyQuota *int64 `json:"monthly_quota"`
}

// Of returns the view of k at time now, showing defaultScopes as its scopes
// when it has none (KEY_DEFAULT_SCOPES), as the Gate grants them.
func Of(k store.Key, now time.Time, defaultScopes []string) KeyView {
	scopes := k.Scopes
	if len(scopes) == 0 {
		scopes = defaultScopes
	}
	v := KeyView{ID: k.ID, Owner: k.Owner, Name: k.Name, Scopes: scopes, Hint: k.Hint,
		CreatedAt: k.CreatedAt.UTC(), Status: string(k.Status(now)),
		RateLimit: k.RateLimit, Burst: k.Burst, MonthlyQuota: k.MonthlyQuota, ReplacedBy: k.ReplacedBy, CreatedBy: k.CreatedBy}
	v.ExpiresAt = utc(k.ExpiresAt)
	v.RevokedAt = utc(k.RevokedAt)
	v.LastUsedAt = utc(k.LastUsedAt)
	if v.LeakedAt = utc(k.LeakedAt); v.LeakedAt != nil {
		v.LeakURL = k.LeakURL
	}
	return v
}

// utc is t in UTC, or nil for the zero time: JSON null.
func utc(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
