package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// ErrNotInDoubt: Settle found no pending attempt of the day older than
// MaxResendAge; a younger one is the sweep's to send again.
var ErrNotInDoubt = errors.New("no meter event in doubt for the day")

// InDoubt reports whether the pending attempt a is in doubt at now: sent
// more than MaxResendAge ago, so that Stripe may no longer drop a resend.
func InDoubt(a *store.ExportAttempt, now time.Time) bool {
	return a != nil && now.Sub(a.Sent) > MaxResendAge
}

// Settle settles the owner's day in doubt at now, as the operator found in
// Stripe: applied (Stripe has the event) advances its export to the
// attempt's To; not applied clears the attempt, and the next sweep
// records a new one under a new identifier. It returns the attempt
// settled. Both are compare-and-set: store.ErrExportMoved if the day moved
// meanwhile. An attempt not yet in doubt is refused (ErrNotInDoubt): a
// sweep may be sending it.
func Settle(ctx context.Context, st store.BillingStore, owner string, day store.Day, now time.Time, applied bool) (store.ExportAttempt, error) {
	days, err := st.Exported(ctx, owner, day, day)
	if err != nil {
		return store.ExportAttempt{}, err
	}
	var a *store.ExportAttempt
	for _, d := range days {
		if d.Day == day {
			a = d.Pending
		}
	}
	if !InDoubt(a, now) {
		return store.ExportAttempt{}, ErrNotInDoubt
	}
	if applied {
		err = st.AdvanceExport(ctx, owner, day, *a)
	} else {
		err = st.AbandonExport(ctx, owner, day, *a)
	}
	if err != nil {
		return store.ExportAttempt{}, fmt.Errorf("settle %s %s: %w", owner, day, err)
	}
	return *a, nil
}
