package keyrules

import (
	"fmt"

	"github.com/keygate/keygate/internal/problem"
)

// MaxStripeCustomer is the longest Stripe customer ID a plan holds: Stripe's
// object IDs are at most 255 characters.
const MaxStripeCustomer = 255

// ValidateStripeCustomer checks a plan's stripe_customer: empty (not
// billed through Stripe), or a Stripe customer ID, "cus_" and letters and
// digits. Checked here, not only by Stripe, so that a typo is refused when
// the plan is set rather than found by the sweep a month of usage later.
// The error is a *LimitError, Field "stripe-customer".
func ValidateStripeCustomer(id string) error {
	if id == "" {
		return nil
	}
	ok := len(id) > len("cus_") && len(id) <= MaxStripeCustomer && id[:4] == "cus_"
	for i := 4; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	if !ok {
		return &LimitError{"stripe-customer", problem.QuoteShort(id), fmt.Sprintf(`empty, or a Stripe customer ID: "cus_" and up to %d letters and digits`, MaxStripeCustomer-4)}
	}
	return nil
}
