// Package events turns what keygate's stores record (store.Outbox) into
// CloudEvents 1.0 and publishes them: to Pub/Sub in its protocol binding,
// binary mode (PubSub), or as log lines (Log). docs/events.md is the
// catalogue; docs/reference.md says why none is lost.
//
// A write made with a context from Writer.Outbox records its event in the
// store with the fact; Deliver publishes it after the commit, bounded by a
// short deadline, and marks it published; Sweep publishes what is left and
// records the expiry notices due.
package events

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// The event types.
const (
	TypeKeyCreated     = "keygate.key.created"
	TypeKeyRotated     = "keygate.key.rotated"
	TypeKeyRevoked     = "keygate.key.revoked"
	TypeKeyDeleted     = "keygate.key.deleted"
	TypeKeyLeaked      = "keygate.key.leaked"
	TypeKeyExpiring    = "keygate.key.expiring"
	TypeUsageThreshold = "keygate.usage.threshold"
	TypePlanChanged    = "keygate.plan.changed"
)

// Actor types: who made a fact.
const (
	ActorKey    = "key" // a key holder, through the keys API; KeyID is the acting key
	ActorCLI    = "cli"
	ActorGitHub = "github_secret_scanning"
	ActorSweep  = "sweep"
)

// Reasons of a revocation.
const (
	ReasonAPI  = "api"
	ReasonCLI  = "cli"
	ReasonLeak = "leak"
)

// Actor is who made a fact.
type Actor struct {
	Type  string `json:"type"`
	KeyID string `json:"key_id,omitempty"`
}

// Source is the ce-source of a store's events: its identity.
func Source(project, database, collection string) string {
	return "//keygate/projects/" + project + "/databases/" + database + "/collections/" + collection
}

// Writer is who writes, and why: what the events of its writes say beside
// the fact.
type Writer struct {
	Actor Actor
	// Reason is a revocation's: ReasonAPI, ReasonCLI or ReasonLeak.
	Reason string
	// LeakRevoked says whether a leak's key is revoked for it
	// (LEAKED_KEY_ACTION), for keygate.key.leaked.
	LeakRevoked bool
	// Now is the clock of the events' time; nil is time.Now.
	Now func() time.Time
}

// Outbox returns the Outbox of one write by w: its event's ID is fixed now,
// so that every publish of it carries the same ce-id.
func (w Writer) Outbox() *store.Outbox {
	id := newID()
	now := w.Now
	if now == nil {
		now = time.Now
	}
	return store.NewOutbox(func(f store.Fact) store.Event {
		ev := render(f, w)
		ev.ID, ev.Time = id, now()
		if f.Kind == store.FactThreshold { // many in one usage batch
			ev.ID = thresholdID(f.Threshold)
		}
		return ev
	})
}

// thresholdID is the ID of a threshold's event: one per key or owner,
// month and percentage, as the event itself.
func thresholdID(t store.Threshold) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("usage.threshold\x00%s\x00%s\x00%s\x00%d", t.Owner, t.KeyID, t.Month, t.Percent)))
	return hex.EncodeToString(sum[:16])
}

// newID returns a random event ID: 128 bits in hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
