package keyrules_test

import (
	"errors"
	"testing"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

func TestValidatePlan(t *testing.T) {
	if err := keyrules.ValidatePlan(store.Plan{Owner: "a", RateLimit: 1, Burst: 1, MonthlyQuota: 1, MaxKeys: keyrules.MaxPlanKeys}); err != nil {
		t.Errorf("ValidatePlan(a valid plan) = %v", err)
	}
	err := keyrules.ValidatePlan(store.Plan{Owner: "a", MaxKeys: keyrules.MaxPlanKeys + 1})
	if le, ok := errors.AsType[*keyrules.LimitError](err); !ok || le.Field != "max-keys" {
		t.Errorf("ValidatePlan(max keys too high) = %v, want a max-keys LimitError", err)
	}
}
