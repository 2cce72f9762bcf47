package events

import (
	"context"
	"errors"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// DeliverWait bounds Deliver: a write answers at most this much later for
// its event, whatever Pub/Sub does.
const DeliverWait = time.Second

// Deliver publishes the events a write recorded in o, once the write has
// succeeded, and marks them published, all within DeliverWait and ctx. A
// write whose answer was lost and read back (o's doubt) publishes only the
// events the store holds: those of an attempt that committed. What is not
// confirmed published stays for the sweep: an error here loses nothing.
func Deliver(ctx context.Context, st store.EventStore, p Publisher, o *store.Outbox, now time.Time) error {
	evs, doubt := o.Events()
	if len(evs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, DeliverWait)
	defer cancel()
	if doubt {
		held := evs[:0]
		for _, ev := range evs {
			stored, err := st.GetEvent(ctx, ev.ID)
			if errors.Is(err, store.ErrEventNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			held = append(held, stored)
		}
		if evs = held; len(evs) == 0 {
			return nil
		}
	}
	if err := p.Publish(ctx, evs); err != nil {
		return err
	}
	return st.MarkPublished(ctx, ids(evs), now)
}

func ids(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}
