package keyrules

import (
	"errors"
	"fmt"
	"strings"

	"github.com/keygate/keygate/apikey/store"
)

// MaxLinkedPage is the most plans one BillingStore.LinkedOwners call
// returns; a larger limit is taken as this.
const MaxLinkedPage = 500

// CheckExport checks the arguments of BillingStore.BeginExport and
// AdvanceExport, for every store alike: a valid owner, a day, and an
// attempt that exports something under an identifier.
func CheckExport(owner string, day store.Day, a store.ExportAttempt) error {
	if err := CheckPlanOwner(owner); err != nil {
		return err
	}
	if _, err := store.ParseDay(string(day)); err != nil {
		return fmt.Errorf("export: day %q: want YYYY-MM-DD", day)
	}
	if a.From < 0 || a.To <= a.From || a.Identifier == "" || a.Timestamp.IsZero() {
		return errors.New("export: an attempt moves from n to more than n, with an identifier and a timestamp")
	}
	return nil
}

// LinkedPosition is where a page of BillingStore.LinkedOwners starts, from
// its after: behind (Customer, Owner) for a next page, or, with Owner
// empty, at the first customer at or after Customer.
type LinkedPosition struct {
	Customer, Owner string
}

// ParseLinkedAfter parses the after of LinkedOwners; "" is the start.
func ParseLinkedAfter(after string) LinkedPosition {
	customer, owner, _ := strings.Cut(after, "/")
	return LinkedPosition{customer, owner}
}

// LinkedNext is the after of the page that follows the plan p.
func LinkedNext(p store.Plan) string { return p.StripeCustomer + "/" + p.Owner }

// Before reports whether the plan p comes before (or at) pos, in the order
// of LinkedOwners: by customer, then owner; a position without owner
// starts at its customer.
func (pos LinkedPosition) Before(p store.Plan) bool {
	if p.StripeCustomer != pos.Customer {
		return p.StripeCustomer < pos.Customer
	}
	return pos.Owner != "" && p.Owner <= pos.Owner
}
