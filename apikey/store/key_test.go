package store_test

import (
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// TestStatus checks a key's state at a time: expiry and revocation take
// effect at their instant, and revocation wins over expiry.
func TestStatus(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name             string
		expires, revoked time.Time
		at               time.Time
		want             store.Status
	}{
		{"neither", time.Time{}, time.Time{}, t0, store.StatusActive},
		{"before expiry", t0.Add(time.Hour), time.Time{}, t0.Add(time.Hour - time.Nanosecond), store.StatusActive},
		{"at expiry", t0.Add(time.Hour), time.Time{}, t0.Add(time.Hour), store.StatusExpired},
		{"after expiry", t0.Add(time.Hour), time.Time{}, t0.Add(2 * time.Hour), store.StatusExpired},
		{"before revocation", time.Time{}, t0, t0.Add(-time.Nanosecond), store.StatusActive},
		{"at revocation", time.Time{}, t0, t0, store.StatusRevoked},
		{"revoked after expiry", t0, t0.Add(time.Hour), t0.Add(2 * time.Hour), store.StatusRevoked},
		{"expired, revoked later", t0, t0.Add(time.Hour), t0.Add(time.Minute), store.StatusExpired},
		{"revoked before expiry", t0.Add(time.Hour), t0, t0.Add(2 * time.Hour), store.StatusRevoked},
	} {
		k := store.Key{ExpiresAt: c.expires, RevokedAt: c.revoked}
		if got := k.Status(c.at); got != c.want {
			t.Errorf("%s: Status = %s, want %s", c.name, got, c.want)
		}
	}
}
