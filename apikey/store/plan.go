package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	// ValidateOwner); a key document written by other means may hold one.
	ErrInvalidOwner = errors.New("invalid owner")
)

// MaxPlanKeys is the highest max_keys of a plan or of DEFAULT_MAX_KEYS. It
// bounds the key documents that counting an owner's active keys reads.
const MaxPlanKeys = 100_000

// DefaultMaxKeys is DEFAULT_MAX_KEYS when it is unset.
const DefaultMaxKeys = 100

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
	// UpdatedAt is when the plan was last set.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// PlanStore keeps one plan per owner. Both keygate stores are PlanStores.
type PlanStore interface {
	// GetPlan returns the owner's plan, or ErrPlanNotFound.
	GetPlan(ctx context.Context, owner string) (Plan, error)
	// SetPlan stores p as p.Owner's whole plan, replacing any, after
	// ValidatePlan. A zero UpdatedAt is stored as the time of the call.
	SetPlan(ctx context.Context, p Plan) error
	// DeletePlan removes the owner's plan, or returns ErrPlanNotFound.
	DeletePlan(ctx context.Context, owner string) error
}

// ValidatePlan checks a plan: its owner with ValidateOwner, its rate, burst
// and quota with ValidateLimits, and a max_keys of 0 (the default) to
// MaxPlanKeys. A limit out of bounds is a *LimitError whose Field is
// "rate", "burst", "quota" or "max-keys".
func ValidatePlan(p Plan) error {
	if err := ValidateOwner(p.Owner); err != nil {
		return fmt.Errorf("owner %w", err)
	}
	if err := ValidateLimits(p.RateLimit, p.Burst, p.MonthlyQuota); err != nil {
		return err
	}
	return ValidateMaxKeys(p.MaxKeys)
}

// ValidateMaxKeys checks a plan's max_keys: 0 (the default) to MaxPlanKeys.
func ValidateMaxKeys(n int) error {
	if n < 0 || n > MaxPlanKeys {
		return &LimitError{"max-keys", strconv.Itoa(n), fmt.Sprintf("0 (DEFAULT_MAX_KEYS) to %d active keys", MaxPlanKeys)}
	}
	return nil
}

// OwnerReader is a store that reads an owner's plan (found false without
// one) and its usage total of a month in one round trip. Both keygate
// stores are OwnerReaders; the request path uses it to refresh the plan of
// an owner with a quota.
type OwnerReader interface {
	ReadOwner(ctx context.Context, owner string, month Month) (p Plan, found bool, monthTotal int64, err error)
}

// LoadPlan returns the owner's stored plan and true, or, when it has none, an
// empty plan of the owner and false: what EffectivePlan takes.
func LoadPlan(ctx context.Context, s PlanStore, owner string) (Plan, bool, error) {
	p, err := s.GetPlan(ctx, owner)
	switch {
	case err == nil:
		return p, true, nil
	case errors.Is(err, ErrPlanNotFound):
		return Plan{Owner: owner}, false, nil
	}
	return Plan{}, false, err
}

// CheckPlanOwner returns ErrInvalidOwner, wrapped with the reason, unless
// owner can name a plan document.
func CheckPlanOwner(owner string) error {
	if err := ValidateOwner(owner); err != nil {
		return fmt.Errorf("%w: owner %w", ErrInvalidOwner, err)
	}
	return nil
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
