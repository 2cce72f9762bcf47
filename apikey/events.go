package apikey

import (
	"context"
	"errors"
	"log/slog"

	"github.com/keygate/keygate/apikey/billing"
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

// SweepSummary is what one Sweep did: the events' counts, and the
// export's to Stripe when STRIPE_SECRET_KEY is set.
type SweepSummary struct {
	events.Summary
	Billing *billing.Summary `json:"billing,omitempty"`
}

// Sweep does the time-driven work, every 5 minutes say: events.Sweep with
// events, and the export of usage to Stripe (billing.Exporter.Export) with
// STRIPE_SECRET_KEY; without either, nothing. The export runs even when
// the events' part failed: each is bounded, and the next run goes on.
func (g *Gate) Sweep(ctx context.Context) (SweepSummary, error) {
	var sum SweepSummary
	var errs []error
	if g.events != nil {
		s, err := events.Sweep(ctx, g.store, g.events, g.now())
		sum.Summary, errs = s, append(errs, err)
	}
	if g.billing != nil {
		b, err := g.billing.Export(ctx, g.now())
		sum.Billing, errs = &b, append(errs, err)
	}
	return sum, errors.Join(errs...)
}
