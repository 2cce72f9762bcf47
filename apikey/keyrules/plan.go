package keyrules

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/keygate/keygate/apikey/store"
)

// MaxPlanKeys is the highest max_keys of a plan or of DEFAULT_MAX_KEYS. It
// bounds the key documents that counting an owner's active keys reads.
const MaxPlanKeys = 100_000

// DefaultMaxKeys is DEFAULT_MAX_KEYS when it is unset.
const DefaultMaxKeys = 100

// ValidatePlan checks a plan: its owner with ValidateOwner, its rate, burst
// and quota with ValidateLimits, its key writes with ValidateMints, and
// a max_keys of 0 (the default) to MaxPlanKeys. A limit out of bounds is a
// *LimitError whose Field is "rate", "burst", "quota", "mint-rate",
// "mint-burst" or "max-keys". Every store's SetPlan refuses
// what it refuses (store.ErrInvalidPlan).
func ValidatePlan(p store.Plan) error {
	if err := ValidateOwner(p.Owner); err != nil {
		return fmt.Errorf("owner %w", err)
	}
	if err := ValidateLimits(p.RateLimit, p.Burst, p.MonthlyQuota); err != nil {
		return err
	}
	if err := ValidateMints(p.MintRate, p.MintBurst); err != nil {
		return err
	}
	if err := ValidateStripeCustomer(p.StripeCustomer); err != nil {
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

// CheckPlanOwner returns store.ErrInvalidOwner, wrapped with the reason,
// unless owner can name a plan document: what every store checks before it
// reads or writes an owner's document.
func CheckPlanOwner(owner string) error {
	if err := ValidateOwner(owner); err != nil {
		return fmt.Errorf("%w: owner %w", store.ErrInvalidOwner, err)
	}
	return nil
}

// LoadPlan returns the owner's stored plan and true, or, when it has none,
// an empty plan of the owner and false, whose zero fields mean the
// configured defaults. It asks only GetPlan of s (a store.PlanStore, or the
// request path's read side).
func LoadPlan(ctx context.Context, s interface {
	GetPlan(ctx context.Context, owner string) (store.Plan, error)
}, owner string) (store.Plan, bool, error) {
	p, err := s.GetPlan(ctx, owner)
	switch {
	case err == nil:
		return p, true, nil
	case errors.Is(err, store.ErrPlanNotFound):
		return store.Plan{Owner: owner}, false, nil
	}
	return store.Plan{}, false, err
}
