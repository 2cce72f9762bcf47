package events

import (
	"encoding/json"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// keyData names a key in an event: never the key, only its hint.
type keyData struct {
	ID        string    `json:"id"`
	Hint      string    `json:"hint"`
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
}

func keyOf(k store.Key) keyData {
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return keyData{ID: k.ID, Hint: k.Hint, Name: k.Name, Owner: k.Owner, Scopes: scopes, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, CreatedBy: k.CreatedBy}
}

// keyEvent is the data of the key events.
type keyEvent struct {
	Key         keyData   `json:"key"`
	Actor       Actor     `json:"actor"`
	Reason      string    `json:"reason,omitempty"`       // revoked
	Replacement *keyData  `json:"replacement,omitempty"`  // rotated
	GraceEndsAt time.Time `json:"grace_ends_at,omitzero"` // rotated
	URL         string    `json:"url,omitempty"`          // leaked
	Revoked     *bool     `json:"revoked,omitempty"`      // leaked
	Notice      string    `json:"notice,omitempty"`       // expiring
}

// planLimits is a plan as `apikey plan show --json` prints it.
type planLimits struct {
	RateLimit    float64 `json:"rate_limit"`
	Burst        int     `json:"burst"`
	MonthlyQuota int64   `json:"monthly_quota"`
	MaxKeys      int     `json:"max_keys"`
	// StripeCustomer is there when the plan links one: a link's change is
	// the change of what the owner is billed to.
	StripeCustomer string `json:"stripe_customer,omitempty"`
}

type planEvent struct {
	Owner string      `json:"owner"`
	Plan  *planLimits `json:"plan"` // null: cleared
	Actor Actor       `json:"actor"`
}

type thresholdEvent struct {
	Owner   string `json:"owner"`
	KeyID   string `json:"key_id,omitempty"`
	Month   string `json:"month"`
	Quota   int64  `json:"quota"`
	Used    int64  `json:"used"`
	Percent int    `json:"percent"`
}

// render is the event of fact f made by w, without its ID and time.
func render(f store.Fact, w Writer) store.Event {
	ev := store.Event{Subject: f.Key.Owner}
	data := keyEvent{Key: keyOf(f.Key), Actor: w.Actor}
	var body any = &data
	switch f.Kind {
	case store.FactCreated:
		ev.Type = TypeKeyCreated
	case store.FactRotated:
		ev.Type = TypeKeyRotated
		r := keyOf(f.Replacement)
		data.Replacement, data.GraceEndsAt = &r, f.Key.ExpiresAt
	case store.FactRevoked:
		ev.Type, data.Reason = TypeKeyRevoked, w.Reason
	case store.FactDeleted:
		ev.Type = TypeKeyDeleted
	case store.FactLeaked:
		ev.Type, data.URL, data.Revoked = TypeKeyLeaked, f.Key.LeakURL, &w.LeakRevoked
	case store.FactExpiring:
		ev.Type, data.Notice = TypeKeyExpiring, f.Notice
	case store.FactPlan:
		ev.Type, ev.Subject = TypePlanChanged, f.Owner
		p := planEvent{Owner: f.Owner, Actor: w.Actor}
		if f.Plan != nil {
			p.Plan = &planLimits{f.Plan.RateLimit, f.Plan.Burst, f.Plan.MonthlyQuota, f.Plan.MaxKeys, f.Plan.StripeCustomer}
		}
		body = p
	case store.FactThreshold:
		t := f.Threshold
		ev.Type, ev.Subject = TypeUsageThreshold, t.Owner
		body = thresholdEvent{Owner: t.Owner, KeyID: t.KeyID, Month: string(t.Month), Quota: t.Quota, Used: t.Used, Percent: t.Percent}
	}
	ev.Data, _ = json.Marshal(body) // plain structs: cannot fail
	return ev
}
