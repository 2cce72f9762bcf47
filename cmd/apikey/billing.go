package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/keygate/keygate/apikey/billing"
	"github.com/keygate/keygate/apikey/store"
)

var billingCommand = &command{
	name:    "billing",
	args:    "settle OWNER DAY --applied|--not-applied",
	params:  []string{"settle", "OWNER", "DAY"},
	summary: "settle a day whose meter event is in doubt: Stripe has it, or not",
	details: `
A meter event the sweep recorded and sent, and Stripe never confirmed, is
sent again by each sweep under the same identifier, which Stripe drops if
it has the event. Stripe drops it for 24 hours only: once the event was
recorded more than 23 hours ago, the sweep sends it no more, logs an
ERROR naming the owner, day, identifier and value, and leaves the day (UTC,
YYYY-MM-DD) alone; 'apikey usage --owner OWNER --month M' shows it "in
doubt". Look the identifier up in Stripe's dashboard (Billing, Meters, the
meter's events; docs/billing.md), then:

  billing settle OWNER DAY --applied      Stripe has the event: the day's
                                          export advances by its value.
  billing settle OWNER DAY --not-applied  Stripe does not have it: the
                                          event is dropped, and the next
                                          sweep sends the value again under
                                          a new identifier.

Both check that the day has not moved since they read it, and refuse a
day with no event in doubt.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		applied := fs.Bool("applied", false, "Stripe has the event")
		notApplied := fs.Bool("not-applied", false, "Stripe does not have the event")
		return func(c *cli, pos []string) error {
			if pos[0] != "settle" {
				return usagef("unknown billing action %q: want settle", pos[0])
			}
			if *applied == *notApplied {
				return usagef("billing settle needs one of --applied, --not-applied")
			}
			return c.billingSettle(pos[1], store.Day(pos[2]), *applied)
		}
	},
}

// billingSettle settles the owner's day in doubt (billing.Settle).
func (c *cli) billingSettle(owner string, day store.Day, applied bool) error {
	if err := checkOwnerArg(owner); err != nil {
		return err
	}
	if _, err := store.ParseDay(string(day)); err != nil {
		return usagef("DAY %q: want YYYY-MM-DD", clean(string(day)))
	}
	st, err := c.store()
	if err != nil {
		return err
	}
	bill, ok := st.(store.BillingStore)
	if !ok {
		return errors.New("this store keeps no exports")
	}
	a, err := billing.Settle(c.ctx, bill, owner, day, c.now(), applied)
	switch {
	case errors.Is(err, billing.ErrNotInDoubt):
		return fmt.Errorf("owner %q has no meter event in doubt on %s: see 'apikey usage --owner %s --month %s'", clean(owner), day, clean(owner), string(day)[:7])
	case errors.Is(err, store.ErrExportMoved):
		return fmt.Errorf("the export of owner %q on %s moved meanwhile (a sweep or another settle): nothing changed; look again with 'apikey usage --owner %s --month %s'",
			clean(owner), day, clean(owner), string(day)[:7])
	case err != nil:
		return checkOutcome(err, fmt.Sprintf("the day %s of owner %q was settled", day, clean(owner)), fmt.Sprintf("'apikey usage --owner %s --month %s'", clean(owner), string(day)[:7]))
	}
	if applied {
		fmt.Fprintf(c.stdout, "Settled %s of owner %q as applied: %d requests exported (identifier %s).\n", day, clean(owner), a.To-a.From, a.Identifier)
	} else {
		fmt.Fprintf(c.stdout, "Settled %s of owner %q as not applied: the next sweep sends %d requests under a new identifier (not %s).\n", day, clean(owner), a.To-a.From, a.Identifier)
	}
	return nil
}
