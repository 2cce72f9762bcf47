package events

import (
	"context"
	"errors"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// The sweep's bounds, per run: a run that reaches one says so (More), and
// the next run goes on.
const (
	// SweepAge: an event is left to its writer's Deliver this long before
	// the sweep sends it.
	SweepAge = time.Minute
	// MaxSweepEvents is the most unpublished events one run sends.
	MaxSweepEvents = 2 * MaxBatch
	// MaxSweepKeys is the most expiring keys one run reads.
	MaxSweepKeys = 1000
	sweepPage    = 100
)

// Expiry notices: NoticeWeek 7 days before a key's expires_at, NoticeDay 1
// day before; a key found inside a day of its expiry gets NoticeDay alone.
const (
	NoticeWeek = "7d"
	NoticeDay  = "1d"
)

// Summary is what one sweep did, as the Sweep function answers it.
type Summary struct {
	Notices   int    `json:"expiry_notices"` // keygate.key.expiring recorded
	Published int    `json:"published"`      // events published (the notices' included)
	More      bool   `json:"more"`           // a bound was reached: the next run goes on
	Error     string `json:"error,omitempty"`
}

// Sweep does the time-driven work, when called (a Cloud Run instance has
// no CPU between requests): it records the expiry notices due at now, each
// once per key (the store keeps which were recorded), publishes them, and
// publishes the events recorded more than SweepAge before now and not yet
// marked published, oldest first. It is idempotent, bounded
// (MaxSweepKeys, MaxSweepEvents), and safe to run twice at once: a notice
// is recorded in a transaction that checks it was not, and an event sent
// twice carries its one ID both times.
func Sweep(ctx context.Context, st store.Store, p Publisher, now time.Time) (Summary, error) {
	var sum Summary
	err := errors.Join(notices(ctx, st, p, now, &sum), publishPending(ctx, st, p, now, &sum))
	if err != nil {
		sum.Error = err.Error()
	}
	return sum, err
}

// notices records and publishes the expiry notices due at now.
func notices(ctx context.Context, st store.Store, p Publisher, now time.Time, sum *Summary) error {
	w := Writer{Actor: Actor{Type: ActorSweep}, Now: func() time.Time { return now }}
	var recorded []store.Event
	after, read := "", 0
	for {
		n := min(sweepPage, MaxSweepKeys-read)
		page, next, err := st.Expiring(ctx, now, now.Add(7*24*time.Hour), after, n)
		if err != nil {
			return err
		}
		for _, e := range page {
			due := NoticeWeek
			if !e.Key.ExpiresAt.After(now.Add(24 * time.Hour)) {
				due = NoticeDay
			}
			if store.NoticeRank(e.Notice) >= store.NoticeRank(due) {
				continue
			}
			o := w.Outbox()
			noted, err := st.NoteExpiry(store.WithOutbox(ctx, o), e.Key.ID, due)
			if err != nil {
				return err // recorded or not, the next run sees which
			}
			if noted {
				evs, _ := o.Events()
				recorded = append(recorded, evs...)
				sum.Notices++
			}
		}
		if read += n; next == "" {
			break
		}
		if read >= MaxSweepKeys {
			sum.More = true
			break
		}
		after = next
	}
	if len(recorded) == 0 {
		return nil
	}
	if err := p.Publish(ctx, recorded); err != nil {
		return err // the next run sends them
	}
	sum.Published += len(recorded)
	return st.MarkPublished(ctx, ids(recorded), now)
}

// publishPending publishes the events left unpublished.
func publishPending(ctx context.Context, st store.Store, p Publisher, now time.Time, sum *Summary) error {
	for sent := 0; sent < MaxSweepEvents; {
		evs, err := st.Unpublished(ctx, now.Add(-SweepAge), MaxBatch)
		if err != nil || len(evs) == 0 {
			return err
		}
		if err := p.Publish(ctx, evs); err != nil {
			return err
		}
		if err := st.MarkPublished(ctx, ids(evs), now); err != nil {
			return err
		}
		sent += len(evs)
		sum.Published += len(evs)
		if len(evs) < MaxBatch {
			return nil
		}
		sum.More = sent >= MaxSweepEvents
	}
	return nil
}
