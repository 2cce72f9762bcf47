package store

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// The outbox. A write whose context carries an Outbox (WithOutbox) records
// the fact it commits (a key created, rotated, revoked, deleted or found
// leaked, a plan set or cleared) as one Event, in the same transaction as
// the fact: so an event is recorded if and only if its fact is committed,
// under an ID fixed before the write. A write that changes nothing (revoking
// a revoked key) records none. Without an Outbox nothing is recorded, and
// nothing is read or written for it. The writer publishes the event after
// the commit and marks it published; the sweep publishes what is left
// (apikey/events).

// ErrEventNotFound: no event has the ID.
var ErrEventNotFound = errors.New("event not found")

// FactKind says what a write did.
type FactKind string

const (
	FactCreated   FactKind = "created"
	FactRotated   FactKind = "rotated"
	FactRevoked   FactKind = "revoked"
	FactDeleted   FactKind = "deleted"
	FactLeaked    FactKind = "leaked"
	FactPlan      FactKind = "plan"
	FactExpiring  FactKind = "expiring"
	FactThreshold FactKind = "threshold"
)

// Fact is what a write committed, for an Outbox to turn into an Event.
type Fact struct {
	Kind FactKind
	// Key is the key as the write left it (deleted: as it was); for a
	// rotation, the old key, and Replacement the new one.
	Key, Replacement Key
	// Owner is the plan's owner (FactPlan) or the quota's (FactThreshold);
	// Plan the plan set, nil when it was cleared.
	Owner string
	Plan  *Plan
	// Notice is an expiry notice's name: "7d" or "1d" (FactExpiring).
	Notice string
	// Threshold is a quota crossing (FactThreshold).
	Threshold Threshold
}

// Threshold is a monthly quota reached: of a key when KeyID is set, else
// of Owner.
type Threshold struct {
	Owner   string
	KeyID   string
	Month   Month
	Quota   int64
	Used    int64
	Percent int // 80 or 100
}

// Event is a fact as published: a CloudEvent's id, type, subject (the
// owner), time and data (a JSON object).
type Event struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data"`
}

// Outbox is one write's request that its fact be recorded: render turns the
// fact into the event, under an ID the Outbox fixed. It is safe for
// concurrent use.
type Outbox struct {
	render func(Fact) Event
	mu     sync.Mutex
	events []Event
	doubt  bool
}

// NewOutbox returns an Outbox that records render(fact).
func NewOutbox(render func(Fact) Event) *Outbox { return &Outbox{render: render} }

type outboxKey struct{}

// WithOutbox returns ctx asking the store's writes made with it to record
// their facts in o.
func WithOutbox(ctx context.Context, o *Outbox) context.Context {
	return context.WithValue(ctx, outboxKey{}, o)
}

func outboxOf(ctx context.Context) *Outbox {
	o, _ := ctx.Value(outboxKey{}).(*Outbox)
	return o
}

// Record is what a store calls when a write is about to commit fact, on
// every attempt: the event to store with it, or false when ctx asks for
// none. The Outbox keeps the events of the attempt since the last Retry.
func Record(ctx context.Context, f Fact) (Event, bool) {
	o := outboxOf(ctx)
	if o == nil {
		return Event{}, false
	}
	ev := o.render(f)
	ev.Time = StoredTime(ev.Time)
	o.mu.Lock()
	o.events = append(o.events, ev)
	o.mu.Unlock()
	return ev, true
}

// Recording reports whether ctx asks for events: a store does no work for
// them (no read) when it does not.
func Recording(ctx context.Context) bool { return outboxOf(ctx) != nil }

// Retry is what a store calls before it tries a write again: the events of
// the attempt that did not commit are dropped.
func Retry(ctx context.Context) {
	if o := outboxOf(ctx); o != nil {
		o.mu.Lock()
		o.events = nil
		o.mu.Unlock()
	}
}

// Events returns the events a write that succeeded recorded (after a
// failure they mean nothing), and whether its answer was
// lost and read back (ConfirmWrites): then the events may not be the ones
// committed, and must be read from the store before they are published.
func (o *Outbox) Events() (events []Event, doubt bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Event(nil), o.events...), o.doubt
}

// markDoubt records that the write's answer was lost.
func markDoubt(ctx context.Context) {
	if o := outboxOf(ctx); o != nil {
		o.mu.Lock()
		o.doubt = true
		o.mu.Unlock()
	}
}

// EventStore keeps the recorded events until they are published, and what
// the sweep needs. Both keygate stores are EventStores.
type EventStore interface {
	// GetEvent returns the recorded event id, published or not, or
	// ErrEventNotFound.
	GetEvent(ctx context.Context, id string) (Event, error)
	// Unpublished returns the events recorded at or before before and not
	// marked published, oldest first, at most limit.
	Unpublished(ctx context.Context, before time.Time, limit int) ([]Event, error)
	// MarkPublished marks the events ids published, at at: Unpublished
	// leaves them out. Unknown IDs are ignored.
	MarkPublished(ctx context.Context, ids []string, at time.Time) error
	// Expiring reads at most limit keys whose expiry is in (from, to],
	// earliest first, after the key after (the next of the previous page;
	// "" for the first), and returns those neither revoked nor replaced by
	// a rotation, each with the last expiry notice recorded on it ("" if
	// none), and the next page's after: "" when there is none.
	Expiring(ctx context.Context, from, to time.Time, after string, limit int) (keys []ExpiringKey, next string, err error)
	// NoteExpiry records notice on the key id, with the event of its fact
	// (FactExpiring) in the same transaction, unless the key is gone,
	// revoked, or has notice, or a later one, already: then it reports
	// false and records nothing.
	NoteExpiry(ctx context.Context, id, notice string) (bool, error)
}

// ExpiringKey is a key the sweep may owe an expiry notice.
type ExpiringKey struct {
	Key    Key
	Notice string // the last notice recorded: "", "7d" or "1d"
}

// Expiry notices, in order: a notice of a key records the ones before it.
var ExpiryNotices = []string{"7d", "1d"}

// NoticeRank is the place of notice in ExpiryNotices, -1 for none.
func NoticeRank(notice string) int {
	for i, n := range ExpiryNotices {
		if n == notice {
			return i
		}
	}
	return -1
}

func (t timeoutStore) GetEvent(ctx context.Context, id string) (Event, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.GetEvent(ctx, id)
}

func (t timeoutStore) Unpublished(ctx context.Context, before time.Time, limit int) ([]Event, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.Unpublished(ctx, before, limit)
}

func (t timeoutStore) MarkPublished(ctx context.Context, ids []string, at time.Time) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.MarkPublished(ctx, ids, at)
}

func (t timeoutStore) Expiring(ctx context.Context, from, to time.Time, after string, limit int) ([]ExpiringKey, string, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.Expiring(ctx, from, to, after, limit)
}

func (t timeoutStore) NoteExpiry(ctx context.Context, id, notice string) (bool, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.s.NoteExpiry(ctx, id, notice)
}
