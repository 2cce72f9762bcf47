package store_test

import (
	"errors"
	"testing"

	"github.com/keygate/keygate/apikey/store"
)

func TestValidatePlan(t *testing.T) {
	if err := store.ValidatePlan(store.Plan{Owner: "a", RateLimit: 1, Burst: 1, MonthlyQuota: 1, MaxKeys: store.MaxPlanKeys}); err != nil {
		t.Errorf("ValidatePlan(a valid plan) = %v", err)
	}
	err := store.ValidatePlan(store.Plan{Owner: "a", MaxKeys: store.MaxPlanKeys + 1})
	if le, ok := errors.AsType[*store.LimitError](err); !ok || le.Field != "max-keys" {
		t.Errorf("ValidatePlan(max keys too high) = %v, want a max-keys LimitError", err)
	}
}
