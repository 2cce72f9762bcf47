package firestorestore

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Billing documents, beside the owner's plan and usage, so that a plan
// cleared and set again finds what was exported:
// {KEYS_COLLECTION}_owners/{owner}/billing/{YYYY-MM-DD}, one per day ever
// attempted (exportDoc), and .../billing/refused, the last refusal
// (refusalDoc), which has no day and so is never read as one.
const (
	billingCollection = "billing"
	refusedDoc        = "refused"
)

// The export's cursor, where the next sweep starts among the linked
// owners: one document, {KEYS_COLLECTION}_billing/cursor (cursorDoc), apart
// from the owners' documents, so that no query of owners reads it.
const (
	billingSuffix = "_billing"
	cursorID      = "cursor"
)

// cursorDoc is the Firestore document of the export's cursor.
type cursorDoc struct {
	After     string    `firestore:"after"`
	UpdatedAt time.Time `firestore:"updated_at,serverTimestamp"`
}

// exportDoc is the Firestore document of an owner's day export. The
// pending attempt's fields are absent (or pending_id empty) when none is.
type exportDoc struct {
	Day       string     `firestore:"day"`
	Exported  int64      `firestore:"exported"`
	From      int64      `firestore:"pending_from,omitempty"`
	To        int64      `firestore:"pending_to,omitempty"`
	ID        string     `firestore:"pending_id,omitempty"`
	Timestamp *time.Time `firestore:"pending_timestamp,omitempty"`
	// Sent is the attempt's record time (ExportAttempt.Sent); a document
	// written before it was kept has none, and its updated_at, written with
	// the attempt, stands for it.
	Sent      *time.Time `firestore:"pending_sent,omitempty"`
	UpdatedAt time.Time  `firestore:"updated_at,serverTimestamp"`
}

// refusalDoc is the Firestore document of an owner's refusal by Stripe.
type refusalDoc struct {
	PlanUpdatedAt time.Time `firestore:"plan_updated_at"`
	Reason        string    `firestore:"reason"`
	At            time.Time `firestore:"at"`
}

// billing returns the owner's billing collection.
func (s *Store) billing(client *firestore.Client, owner string) *firestore.CollectionRef {
	return s.owners(client).Doc(owner).Collection(billingCollection)
}

// decodeExport decodes a day export document.
func decodeExport(snap *firestore.DocumentSnapshot) (store.DayExport, error) {
	var d exportDoc
	if err := snap.DataTo(&d); err != nil {
		return store.DayExport{}, fmt.Errorf("firestore: export document %s: %w", snap.Ref.Path, err)
	}
	e := store.DayExport{Day: store.Day(d.Day), Exported: d.Exported}
	if d.ID != "" && d.Timestamp != nil {
		e.Pending = &store.ExportAttempt{From: d.From, To: d.To, Identifier: d.ID, Timestamp: d.Timestamp.UTC(), Sent: d.UpdatedAt.UTC()}
		if d.Sent != nil {
			e.Pending.Sent = d.Sent.UTC()
		}
	}
	return e, nil
}

// Exported implements BillingStore: one query, as readDays.
func (s *Store) Exported(ctx context.Context, owner string, from, to store.Day) ([]store.DayExport, error) {
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return nil, err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	snaps, err := s.billing(client, owner).Where("day", ">=", string(from)).Where("day", "<=", string(to)).
		OrderBy("day", firestore.Asc).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("firestore: read exports: %w", err)
	}
	out := make([]store.DayExport, 0, len(snaps))
	for _, snap := range snaps {
		e, err := decodeExport(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// BeginExport implements BillingStore.
func (s *Store) BeginExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	return s.moveExport(ctx, "begin export", owner, day, a, func(e store.DayExport) (exportDoc, bool) {
		if e.Exported != a.From || e.Pending != nil {
			return exportDoc{}, false
		}
		ts, sent := store.StoredTime(a.Timestamp), store.StoredTime(a.Sent)
		d := exportDoc{Day: string(day), Exported: e.Exported, From: a.From, To: a.To, ID: a.Identifier, Timestamp: &ts}
		if !a.Sent.IsZero() {
			d.Sent = &sent
		}
		return d, true
	})
}

// AdvanceExport implements BillingStore.
func (s *Store) AdvanceExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	return s.moveExport(ctx, "advance export", owner, day, a, func(e store.DayExport) (exportDoc, bool) {
		if e.Exported != a.From || e.Pending == nil || e.Pending.Identifier != a.Identifier || e.Pending.To != a.To {
			return exportDoc{}, false
		}
		return exportDoc{Day: string(day), Exported: a.To}, true
	})
}

// AbandonExport implements BillingStore.
func (s *Store) AbandonExport(ctx context.Context, owner string, day store.Day, a store.ExportAttempt) error {
	return s.moveExport(ctx, "abandon export", owner, day, a, func(e store.DayExport) (exportDoc, bool) {
		if e.Exported != a.From || e.Pending == nil || e.Pending.Identifier != a.Identifier || e.Pending.To != a.To {
			return exportDoc{}, false
		}
		return exportDoc{Day: string(day), Exported: e.Exported}, true
	})
}

// cursor returns the export cursor's document.
func (s *Store) cursor(client *firestore.Client) *firestore.DocumentRef {
	return client.Collection(s.collection + billingSuffix).Doc(cursorID)
}

// ExportCursor implements BillingStore.
func (s *Store) ExportCursor(ctx context.Context) (string, error) {
	client, err := s.Client(ctx)
	if err != nil {
		return "", err
	}
	snap, err := s.cursor(client).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("firestore: export cursor: %w", err)
	}
	var d cursorDoc
	if err := snap.DataTo(&d); err != nil {
		return "", fmt.Errorf("firestore: cursor document %s: %w", snap.Ref.Path, err)
	}
	return d.After, nil
}

// SetExportCursor implements BillingStore: one write, no transaction (the
// last write wins).
func (s *Store) SetExportCursor(ctx context.Context, after string) error {
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	if _, err := s.cursor(client).Set(ctx, cursorDoc{After: after}); err != nil {
		return fmt.Errorf("firestore: set export cursor: %w", err)
	}
	return nil
}

// moveExport reads the day's document in a transaction, and writes what
// move makes of it, or returns ErrExportMoved when move refuses. A lost
// commit answer leaves the outcome unknown: the next sweep reads which.
func (s *Store) moveExport(ctx context.Context, op, owner string, day store.Day, a store.ExportAttempt, move func(store.DayExport) (exportDoc, bool)) error {
	if err := keyrules.CheckExport(owner, day, a); err != nil {
		return err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	ref := s.billing(client, owner).Doc(string(day))
	err = runTransaction(ctx, client, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		e := store.DayExport{Day: day}
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return err
		default:
			if e, err = decodeExport(snap); err != nil {
				return err
			}
		}
		d, ok := move(e)
		if !ok {
			return store.ErrExportMoved
		}
		return tx.Set(ref, d)
	})
	if err != nil {
		return fmt.Errorf("firestore: %s: %w", op, err)
	}
	return nil
}

// LinkedOwners implements BillingStore: one query on the plans with a
// stripe_customer, ordered by it and by owner (the single-field index
// orders by document ID after the field: no composite index is needed).
func (s *Store) LinkedOwners(ctx context.Context, after string, limit int) ([]store.Plan, string, error) {
	limit = min(max(limit, 1), keyrules.MaxLinkedPage)
	client, err := s.Client(ctx)
	if err != nil {
		return nil, "", err
	}
	owners := s.owners(client)
	pos := keyrules.ParseLinkedAfter(after)
	q := owners.Where("stripe_customer", ">", "")
	if pos.Owner == "" && pos.Customer != "" {
		q = owners.Where("stripe_customer", ">=", pos.Customer)
	}
	q = q.OrderBy("stripe_customer", firestore.Asc).OrderBy(firestore.DocumentID, firestore.Asc)
	if pos.Owner != "" {
		q = q.StartAfter(pos.Customer, owners.Doc(pos.Owner))
	}
	snaps, err := q.Limit(limit + 1).Documents(ctx).GetAll()
	if err != nil {
		return nil, "", fmt.Errorf("firestore: linked owners: %w", err)
	}
	plans := make([]store.Plan, 0, len(snaps))
	for _, snap := range snaps[:min(len(snaps), limit)] {
		p, err := decodePlan(snap.Ref.ID, snap)
		if err != nil {
			return nil, "", err
		}
		plans = append(plans, p)
	}
	if len(snaps) <= limit {
		return plans, "", nil
	}
	return plans, keyrules.LinkedNext(plans[limit-1]), nil
}

// RefuseBilling implements BillingStore.
func (s *Store) RefuseBilling(ctx context.Context, owner string, r store.BillingRefusal) error {
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return err
	}
	_, err = s.billing(client, owner).Doc(refusedDoc).Set(ctx, refusalDoc{
		PlanUpdatedAt: store.StoredTime(r.PlanUpdatedAt), Reason: r.Reason, At: store.StoredTime(r.At)})
	if err != nil {
		return fmt.Errorf("firestore: refuse billing: %w", err)
	}
	return nil
}

// BillingRefused implements BillingStore.
func (s *Store) BillingRefused(ctx context.Context, owner string) (store.BillingRefusal, error) {
	if err := keyrules.CheckPlanOwner(owner); err != nil {
		return store.BillingRefusal{}, err
	}
	client, err := s.Client(ctx)
	if err != nil {
		return store.BillingRefusal{}, err
	}
	snap, err := s.billing(client, owner).Doc(refusedDoc).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return store.BillingRefusal{}, nil
	}
	if err != nil {
		return store.BillingRefusal{}, fmt.Errorf("firestore: billing refused: %w", err)
	}
	var d refusalDoc
	if err := snap.DataTo(&d); err != nil {
		return store.BillingRefusal{}, fmt.Errorf("firestore: refusal document %s: %w", snap.Ref.Path, err)
	}
	return store.BillingRefusal{PlanUpdatedAt: d.PlanUpdatedAt.UTC(), Reason: d.Reason, At: d.At.UTC()}, nil
}
