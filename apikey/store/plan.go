package store

import (
	"context"
	"errors"
	"time"
)

// Errors of plans and of the key cap; compare with errors.Is.
var (
	// ErrPlanNotFound: the owner has no stored plan, and so gets the
	// configured defaults.
	ErrPlanNotFound = errors.New("plan not found")
	// ErrKeyLimitReached: CreateCapped found the owner at its cap of active
	// keys, or RotateCapped found it past it, and created nothing.
	ErrKeyLimitReached = errors.New("key limit reached")
	// ErrInvalidOwner: the owner cannot name a plan document (see
	// keyrules.ValidateOwner); a key document written by other means may
	// hold one.
	ErrInvalidOwner = errors.New("invalid owner")
	// ErrInvalidPlan, wrapped with the reason: SetPlan was given a plan
	// that keyrules.ValidatePlan refuses, and stored nothing.
	ErrInvalidPlan = errors.New("invalid plan")
)

// Plan is an owner's limits, stored in {KEYS_COLLECTION}_owners/{owner}.
// Every zero field means the configured default (DEFAULT_RATE_LIMIT,
// DEFAULT_BURST, DEFAULT_MONTHLY_QUOTA, DEFAULT_MAX_KEYS): a plan raises or
// lowers a default, it cannot turn a limit off.
type Plan struct {
	Owner string `json:"owner"`
	// RateLimit is requests per second per instance, Burst the requests at
	// once.
	RateLimit float64 `json:"rate_limit"`
	Burst     int     `json:"burst"`
	// MonthlyQuota is requests per UTC month.
	MonthlyQuota int64 `json:"monthly_quota"`
	// MaxKeys is the most active (neither revoked nor expired) keys the
	// owner may hold; creating one more is refused, and so is a rotation
	// once the new key of another one in its grace is over it (see
	// KeyStore.RotateCapped).
	MaxKeys int `json:"max_keys"`
	// MintRate is the owner's mints through the keys API (creates and
	// rotations) per second on each instance, or across instances with
	// Redis, and MintBurst the mints at once: the management budget's
	// share that writes the owner's key-count document (see
	// keyrules.DefaultMintRate). Zero means that default.
	MintRate  float64 `json:"mint_rate,omitzero"`
	MintBurst int     `json:"mint_burst,omitzero"`
	// StripeCustomer links the owner to a Stripe customer (cus_...): the
	// sweep exports the owner's usage to that customer's meter (see
	// keyrules.ValidateStripeCustomer). Empty: not billed through Stripe.
	StripeCustomer string `json:"stripe_customer,omitempty"`
	// UpdatedAt is when the plan was last set.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// PlanStore keeps one plan per owner. Both keygate stores are PlanStores.
type PlanStore interface {
	// GetPlan returns the owner's plan, or ErrPlanNotFound.
	GetPlan(ctx context.Context, owner string) (Plan, error)
	// SetPlan stores p as p.Owner's whole plan, replacing any, or returns
	// ErrInvalidPlan for a plan keyrules.ValidatePlan refuses. A zero
	// UpdatedAt is stored as the time of the call.
	SetPlan(ctx context.Context, p Plan) error
	// DeletePlan removes the owner's plan, or returns ErrPlanNotFound.
	DeletePlan(ctx context.Context, owner string) error
}

// OwnerReader is a store that reads an owner's plan (found false without
// one) and its usage total of a month in one round trip. Both keygate
// stores are OwnerReaders; the request path uses it to refresh the plan of
// an owner with a quota.
type OwnerReader interface {
	ReadOwner(ctx context.Context, owner string, month Month) (p Plan, found bool, monthTotal int64, err error)
}

// StoredPlan is p as every store keeps it: UpdatedAt in UTC to the
// microsecond, the time of the call if it is zero.
func StoredPlan(p Plan) Plan {
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = time.Now()
	}
	p.UpdatedAt = StoredTime(p.UpdatedAt)
	return p
}
