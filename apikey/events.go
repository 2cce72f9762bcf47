package apikey

import (
	"context"
	"log/slog"

	"github.com/keygate/keygate/apikey/events"
	"github.com/keygate/keygate/apikey/store"
)

// WithEvents publishes the events to p, not EVENTS_TOPIC; Close closes it.
func WithEvents(p events.Publisher) Option { return func(o *options) { o.events = p } }

// eventsOf returns the publisher that cfg and o ask for, or nil. A Pub/Sub
// client is created by the first publish, not here.
func eventsOf(cfg Config, o options) events.Publisher {
	if o.events != nil || cfg.EventsTopic == "" {
		return o.events
	}
	p, err := events.NewPubSub(cfg.Project, cfg.EventsTopic, cfg.eventSource())
	if err != nil { // LoadConfig checks it: a Config built by hand
		o.log.Error("EVENTS_TOPIC is not valid: no events are published", slog.String("error", err.Error()))
		return nil
	}
	return p
}

// eventSource is the ce-source of the Gate's events: its store's identity.
func (c Config) eventSource() string {
	return events.Source(c.Project, c.Database, c.Collection)
}

// recording returns ctx asking the store to record the event of a write by
// w, and the outbox that will hold it; ctx itself and nil without events.
func (g *Gate) recording(ctx context.Context, w events.Writer) (context.Context, *store.Outbox) {
	if g.events == nil {
		return ctx, nil
	}
	w.Now = g.now
	o := w.Outbox()
	return store.WithOutbox(ctx, o), o
}

// deliver publishes the event of a write that succeeded, waiting at most
// events.DeliverWait and ctx; what it cannot publish the sweep will.
func (g *Gate) deliver(ctx context.Context, o *store.Outbox) {
	if o == nil {
		return
	}
	if err := events.Deliver(ctx, g.store, g.events, o, g.now()); err != nil {
		g.log.Warn("event not published: the sweep will publish it", slog.String("error", err.Error()))
	}
}

// usageEvents is the meter's Record: each usage batch records the quota
// thresholds it reaches, and publishes them once stored; nil without
// events.
func (g *Gate) usageEvents() func(context.Context) (context.Context, func(bool)) {
	if g.events == nil {
		return nil
	}
	return func(ctx context.Context) (context.Context, func(bool)) {
		rctx, o := g.recording(ctx, events.Writer{})
		return rctx, func(applied bool) {
			if applied {
				g.deliver(ctx, o)
			}
		}
	}
}

// Sweep runs events.Sweep, every 5 minutes say; without events, nothing.
func (g *Gate) Sweep(ctx context.Context) (events.Summary, error) {
	if g.events == nil {
		return events.Summary{}, nil
	}
	return events.Sweep(ctx, g.store, g.events, g.now())
}
