package store

import (
	"context"
	"errors"
	"time"
)

// ErrExportMoved: BeginExport or AdvanceExport found an owner's day
// exported or attempted otherwise than the call expected (another sweep
// moved it), and changed nothing.
var ErrExportMoved = errors.New("export moved")

// BillingStore keeps what the sweep exported of each owner's usage to its
// Stripe customer (apikey/billing), per owner and UTC day, and the owners
// Stripe refused. Both keygate stores are BillingStores; docs/reference.md
// gives the Firestore layout and the argument for exactness.
type BillingStore interface {
	// Exported returns the owner's export records of the days from to to
	// (inclusive), oldest first, leaving out days never attempted.
	Exported(ctx context.Context, owner string, from, to Day) ([]DayExport, error)
	// BeginExport records the attempt a of the owner's day, in a
	// transaction that checks the day's exported amount is a.From and that
	// no attempt is pending: ErrExportMoved otherwise. It is recorded
	// before the meter event is sent, so that whoever finds it pending
	// sends that event again, and nothing else, for the day.
	BeginExport(ctx context.Context, owner string, day Day, a ExportAttempt) error
	// AdvanceExport moves the day's exported amount from a.From to a.To
	// and clears its pending attempt, in a transaction that checks the
	// pending attempt is a (its Identifier) and the amount a.From:
	// ErrExportMoved otherwise (another sweep advanced it).
	AdvanceExport(ctx context.Context, owner string, day Day, a ExportAttempt) error
	// AbandonExport clears the day's pending attempt a without advancing
	// its exported amount (the operator found Stripe does not have it), in
	// a transaction that checks as AdvanceExport does: ErrExportMoved
	// otherwise. The next sweep records a new attempt, under a new
	// identifier (its Sent differs).
	AbandonExport(ctx context.Context, owner string, day Day, a ExportAttempt) error
	// ExportCursor returns where the next sweep starts among the linked
	// owners: an after of LinkedOwners, "" for the start.
	ExportCursor(ctx context.Context) (string, error)
	// SetExportCursor stores where the next sweep starts. Two sweeps may
	// both write it: the last write wins, and a lost one repeats work only.
	SetExportCursor(ctx context.Context, after string) error
	// LinkedOwners returns at most limit plans that have a StripeCustomer,
	// ordered by customer and then owner, starting after after: "" for the
	// first page, the next of the previous page, or a customer ID (or a
	// prefix of one, cus_K) to start at the first plan whose customer is at
	// or after it; next is "" after the last page.
	LinkedOwners(ctx context.Context, after string, limit int) (plans []Plan, next string, err error)
	// RefuseBilling records that Stripe refused the owner's customer under
	// the plan of r.PlanUpdatedAt, replacing any refusal recorded before.
	RefuseBilling(ctx context.Context, owner string, r BillingRefusal) error
	// BillingRefused returns the refusal recorded for the owner, the zero
	// BillingRefusal if none is.
	BillingRefused(ctx context.Context, owner string) (BillingRefusal, error)
}

// DayExport is what was exported of an owner's day.
type DayExport struct {
	Day      Day   `json:"day"`
	Exported int64 `json:"exported"` // requests Stripe confirmed
	// Pending is the meter event recorded and not yet confirmed: it is
	// sent again, as it is, before anything else of the day.
	Pending *ExportAttempt `json:"pending,omitempty"`
}

// ExportAttempt is one meter event for an owner's day: From requests
// exported before it, To after; its value is To - From.
type ExportAttempt struct {
	From       int64     `json:"from"`
	To         int64     `json:"to"`
	Identifier string    `json:"identifier"` // Stripe's deduplication key
	Timestamp  time.Time `json:"timestamp"`  // the event's, inside the day
	// Sent is when the attempt was recorded, before its first send: Stripe
	// deduplicates an identifier for 24 hours from then at least, so an
	// attempt older than billing.MaxResendAge is not sent again. Zero: a
	// record of before it was kept (the Firestore store reads its
	// updated_at instead).
	Sent time.Time `json:"sent,omitzero"`
}

// BillingRefusal records that Stripe refused an owner's customer (a 4xx
// other than 429): the sweep skips the owner while its plan is the one
// refused (PlanUpdatedAt), and tries again once the plan changes.
type BillingRefusal struct {
	PlanUpdatedAt time.Time `json:"plan_updated_at"`
	Reason        string    `json:"reason"` // Stripe's message
	At            time.Time `json:"at"`
}

// Refuses reports whether r applies to the plan p.
func (r BillingRefusal) Refuses(p Plan) bool {
	return !r.At.IsZero() && r.PlanUpdatedAt.Equal(p.UpdatedAt)
}

func (t timeoutStore) Exported(ctx context.Context, owner string, from, to Day) ([]DayExport, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.Exported(ctx, owner, from, to)
}

func (t timeoutStore) BeginExport(ctx context.Context, owner string, day Day, a ExportAttempt) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.BeginExport(ctx, owner, day, a)
}

func (t timeoutStore) AdvanceExport(ctx context.Context, owner string, day Day, a ExportAttempt) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.AdvanceExport(ctx, owner, day, a)
}

func (t timeoutStore) AbandonExport(ctx context.Context, owner string, day Day, a ExportAttempt) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.AbandonExport(ctx, owner, day, a)
}

func (t timeoutStore) ExportCursor(ctx context.Context) (string, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.ExportCursor(ctx)
}

func (t timeoutStore) SetExportCursor(ctx context.Context, after string) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.SetExportCursor(ctx, after)
}

func (t timeoutStore) LinkedOwners(ctx context.Context, after string, limit int) ([]Plan, string, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.LinkedOwners(ctx, after, limit)
}

func (t timeoutStore) RefuseBilling(ctx context.Context, owner string, r BillingRefusal) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.RefuseBilling(ctx, owner, r)
}

func (t timeoutStore) BillingRefused(ctx context.Context, owner string) (BillingRefusal, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.BillingRefused(ctx, owner)
}
