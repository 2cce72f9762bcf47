package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/events"
	"github.com/keygate/keygate/apikey/store"
)

// The CLI's writes record their events as the Gate's do (apikey/events),
// with actor "cli", and publish them to EVENTS_TOPIC after the commit,
// waiting at most events.DeliverWait; what it cannot publish `apikey sweep`
// (or the Sweep function) will.

// publisher returns the publisher of EVENTS_TOPIC, built once, and the
// store's outbox; nil, nil without a topic or with a store that keeps no
// events.
func (c *cli) publisher() (events.Publisher, store.EventStore, error) {
	cfg, err := c.config()
	if err != nil || cfg.EventsTopic == "" {
		return nil, nil, err
	}
	st, err := c.store()
	if err != nil {
		return nil, nil, err
	}
	es, ok := st.(store.EventStore)
	if !ok {
		return nil, nil, nil
	}
	if c.events == nil {
		p, err := events.NewPubSub(cfg.Project, cfg.EventsTopic, events.Source(cfg.Project, cfg.Database, cfg.Collection))
		if err != nil {
			return nil, nil, err
		}
		c.events = p
	}
	return c.events, es, nil
}

// recording returns c.ctx asking the store to record the event of the
// command's write, with a revocation's reason, and the outbox that holds
// it; c.ctx and nil without events.
func (c *cli) recording(reason string) (context.Context, *store.Outbox) {
	if p, _, err := c.publisher(); p == nil || err != nil {
		return c.ctx, nil
	}
	o := events.Writer{Actor: events.Actor{Type: events.ActorCLI}, Reason: reason, Now: c.now}.Outbox()
	return store.WithOutbox(c.ctx, o), o
}

// deliver publishes the event of a write that succeeded; what it cannot
// publish stays for the sweep, which the warning says.
func (c *cli) deliver(o *store.Outbox) {
	p, es, err := c.publisher()
	if o == nil || p == nil || err != nil {
		return
	}
	if err := events.Deliver(c.ctx, es, p, o, c.now()); err != nil {
		fmt.Fprintf(c.stderr, "apikey: warning: event not published yet (%s): the next sweep publishes it\n", oneLine(err.Error()))
	}
}

var sweepCommand = &command{
	name:    "sweep",
	args:    "[--json]",
	summary: "publish the events left unpublished and the expiry notices due; export usage to Stripe",
	details: `
Does what the Sweep function does when Cloud Scheduler calls it. With
EVENTS_TOPIC: records the keygate.key.expiring notices due (7 days and 1 day
before a key's expires_at, once each per key) and publishes them, then
publishes the events recorded more than a minute ago and not yet published.
Idempotent, bounded per run (1000 keys read, 1000 events sent: "more" says a
run stopped at a bound), and safe to run while another runs. With
STRIPE_SECRET_KEY: exports the usage of the owners whose plan names a Stripe
customer, one meter event per owner and UTC day of the last 35 for what its
stored total gained since the last export (docs/reference.md, "Usage
exported to Stripe"); bounded too (1000 owners, 300 meter events a run), safe
to run twice at once and to interrupt. Without either it does nothing.
Prints what it did, with --json as one JSON object.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		asJSON := fs.Bool("json", false, "print one JSON object")
		return func(c *cli, _ []string) error { return c.sweep(*asJSON) }
	},
}

// sweep runs one sweep.
func (c *cli) sweep(asJSON bool) error {
	p, _, err := c.publisher()
	if err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	st, _ := c.store()
	full, ok := st.(store.Store)
	if !ok {
		return errors.New("this store keeps no events")
	}
	exporter := apikey.BillingExporter(cfg, store.WithTimeout(full, cfg.StoreTimeout), slog.New(slog.NewTextHandler(c.stderr, nil)))
	if p == nil && exporter == nil {
		return errors.New("neither EVENTS_TOPIC nor STRIPE_SECRET_KEY is set: there is nothing to sweep")
	}
	var sum apikey.SweepSummary
	var errs []error
	if p != nil {
		s, err := events.Sweep(c.ctx, full, p, c.now())
		sum.Summary, errs = s, append(errs, err)
	}
	if exporter != nil {
		b, err := exporter.Export(c.ctx, c.now())
		sum.Billing, errs = &b, append(errs, err)
	}
	if asJSON {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(c.stdout, string(b))
	} else {
		if p != nil {
			fmt.Fprintf(c.stdout, "Recorded %d expiry notices; published %d events.\n", sum.Notices, sum.Published)
		}
		if b := sum.Billing; b != nil {
			fmt.Fprintf(c.stdout, "Sent %d meter events to Stripe (%d resent); %d failed, to be sent again; %d owners refused by Stripe, %d skipped until their plan changes.\n",
				b.MeterEvents, b.Resent, b.Failed, b.OwnersRefused, b.OwnersSkipped)
		}
		if sum.More || sum.Billing != nil && sum.Billing.More {
			fmt.Fprintln(c.stdout, "More remain: run it again.")
		}
	}
	return errors.Join(errs...)
}
