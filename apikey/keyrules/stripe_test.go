package keyrules

import (
	"strings"
	"testing"
)

func TestValidateStripeCustomer(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"", true},
		{"cus_NffrFeUfNV2Hib", true},
		{"cus_" + strings.Repeat("a", MaxStripeCustomer-4), true},
		{"cus_" + strings.Repeat("a", MaxStripeCustomer-3), false},
		{"cus_", false},
		{"cus", false},
		{"sub_NffrFeUfNV2Hib", false},
		{"CUS_NffrFeUfNV2Hib", false},
		{"cus_Nffr FeUf", false},
		{"cus_Nffr-FeUf", false},
		{"cus_Nffr\x00", false},
		{"cus_Nffré", false},
	} {
		err := ValidateStripeCustomer(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateStripeCustomer(%q) = %v, want ok %v", tc.id, err, tc.ok)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Errorf("ValidateStripeCustomer(%d bytes): error of %d bytes: the echo is not bounded", len(tc.id), len(err.Error()))
		}
	}
}
