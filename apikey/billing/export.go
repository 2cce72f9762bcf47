package billing

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// The bounds of one run: a run that reaches one says so (More), and the
// next run goes on where it stopped (the store's export cursor).
const (
	// WindowDays is how many UTC days back an owner's usage is exported:
	// today and the 34 before, each stamped inside its day, within
	// Stripe's 35 days for a meter event's timestamp.
	WindowDays = 35
	// MaxSweepOwners is the most linked owners one run reads.
	MaxSweepOwners = 1000
	// MaxSweepMeterEvents is the most meter events one run sends, resends
	// included: one after the other, at some 0.1 to 0.3 s each with the
	// store's two transactions, within the Sweep function's 2 minutes.
	MaxSweepMeterEvents = 300
	// CallTimeout is the deadline of one call to Stripe.
	CallTimeout = 10 * time.Second
	// MaxRateWait is the longest Retry-After a run waits for after a 429
	// (1 s without one) before it sends the event once more; a longer one,
	// or a second 429, stops the run's sends.
	MaxRateWait = 5 * time.Second
	// maxFailures is how many sends may fail (5xx, timeout) in one run
	// before it stops sending: Stripe is down or slow, and the next run
	// tries again.
	maxFailures = 3
	ownersPage  = 100
	// MaxResendAge is the oldest a pending attempt is sent again: Stripe
	// deduplicates an identifier for 24 hours at least from its first
	// send, which comes after the attempt's Sent; an hour is left for
	// clocks and a slow run. An older attempt is in doubt: Stripe may
	// have it, and may no longer drop a resend of it, so the day waits
	// for the operator ('apikey billing settle').
	MaxResendAge = 23 * time.Hour
)

// Store is what the exporter reads and writes: the owners' daily totals and
// the export records.
type Store interface {
	store.BillingStore
	OwnerDailyUsage(ctx context.Context, owner string, from, to store.Day) ([]store.DayUsage, error)
}

// Options configure an Exporter.
type Options struct {
	SecretKey string // STRIPE_SECRET_KEY
	APIBase   string // STRIPE_API_BASE; empty: Stripe's
	EventName string // STRIPE_METER_EVENT; empty: DefaultMeterEvent
	// HTTPClient sends the requests; nil: one without a timeout of its
	// own (each call has CallTimeout).
	HTTPClient  *http.Client
	CallTimeout time.Duration // 0: CallTimeout
	Log         *slog.Logger  // nil: slog.Default()
	// MaxOwners and MaxMeterEvents bound one run; 0: MaxSweepOwners,
	// MaxSweepMeterEvents.
	MaxOwners, MaxMeterEvents int
}

// Exporter exports owners' usage to Stripe meters; Export runs it once.
type Exporter struct {
	st                  Store
	stripe              *meterEvents
	timeout             time.Duration
	log                 *slog.Logger
	maxOwners, maxSends int
}

// New returns an Exporter on st. It does no I/O.
func New(st Store, o Options) *Exporter {
	if o.EventName == "" {
		o.EventName = DefaultMeterEvent
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = CallTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MaxOwners <= 0 {
		o.MaxOwners = MaxSweepOwners
	}
	if o.MaxMeterEvents <= 0 {
		o.MaxMeterEvents = MaxSweepMeterEvents
	}
	return &Exporter{st: st, stripe: newMeterEvents(o.SecretKey, o.APIBase, o.EventName, o.HTTPClient), timeout: o.CallTimeout, log: o.Log,
		maxOwners: o.MaxOwners, maxSends: o.MaxMeterEvents}
}

// Export exports, at now, what the linked owners' stored totals gained
// since the last export, per UTC day of the last WindowDays: for each day, it
// first sends again the attempt left pending (a lost answer, a failure, an
// interrupted run, another run sending it now), then records and sends
// one for the difference left; a day whose pending attempt is older than
// MaxResendAge is in doubt and left alone. It is bounded (MaxSweepOwners,
// MaxSweepMeterEvents), safe to run twice at once, and safe to interrupt:
// an attempt is recorded before it is sent.
func (e *Exporter) Export(ctx context.Context, now time.Time) (Summary, error) {
	r := &run{Exporter: e, now: now.UTC()}
	err := r.owners(ctx)
	if err != nil {
		r.sum.Error = scrub(err.Error())
	}
	return r.sum, err
}

// run is one Export.
type run struct {
	*Exporter
	now      time.Time
	sum      Summary
	sent     int  // sends tried
	failures int  // sends that failed
	stop     bool // no more sends in this run
}

// owners exports the linked owners in the order of LinkedOwners, from
// the store's export cursor to the end, then from the beginning up to the
// cursor, and moves the cursor to the first owner it did not finish, or
// to the beginning after the last: so that runs stopped at a bound reach
// every owner in turn. Two runs at once may read the same cursor: each
// owner's export is safe twice at once.
func (r *run) owners(ctx context.Context) error {
	cursor, err := r.st.ExportCursor(ctx)
	if err != nil {
		return err
	}
	at := keyrules.ParseLinkedAfter(cursor)
	resume, read := cursor, 0
	err = r.pass(ctx, cursor, at, &resume, &read)
	if resume != cursor {
		if err := r.st.SetExportCursor(ctx, resume); err != nil {
			r.log.Warn("export cursor not stored: the next sweep repeats some owners", slog.String("error", scrub(err.Error())))
		}
	}
	return err
}

// pass reads the owners from cursor to the end, and then, if cursor is not
// the start, from the start up to it (at); resume is after the last owner
// finished, "" at the end of the owners.
func (r *run) pass(ctx context.Context, cursor string, at keyrules.LinkedPosition, resume *string, read *int) error {
	wrapped := false
	after := cursor
	for {
		page, next, err := r.st.LinkedOwners(ctx, after, ownersPage)
		if err != nil {
			return err
		}
		for _, p := range page {
			if wrapped && !at.Before(p) {
				return nil // back where the run started
			}
			if r.stop || *read >= r.maxOwners {
				r.sum.More = true
				return nil
			}
			*read++
			if err := r.owner(ctx, p); err != nil {
				return err
			}
			if r.stop {
				return nil // the owner may not be finished: the next run starts at it
			}
			*resume = keyrules.LinkedNext(p)
		}
		if next != "" {
			after = next
			continue
		}
		*resume = ""
		if wrapped || cursor == "" {
			return nil
		}
		wrapped, after = true, ""
	}
}

// dayState is one day of an owner: its stored total and export record.
type dayState struct {
	total  int64
	export store.DayExport
}

// owner exports one owner's days, oldest first.
func (r *run) owner(ctx context.Context, p store.Plan) error {
	refused, err := r.st.BillingRefused(ctx, p.Owner)
	if err != nil {
		return err
	}
	if refused.Refuses(p) {
		r.sum.OwnersSkipped++
		return nil
	}
	from, to := store.DayOf(r.now.AddDate(0, 0, -(WindowDays-1))), store.DayOf(r.now)
	usage, err := r.st.OwnerDailyUsage(ctx, p.Owner, from, to)
	if err != nil {
		return err
	}
	exports, err := r.st.Exported(ctx, p.Owner, from, to)
	if err != nil {
		return err
	}
	days := map[store.Day]*dayState{}
	state := func(d store.Day) *dayState {
		if days[d] == nil {
			days[d] = &dayState{export: store.DayExport{Day: d}}
		}
		return days[d]
	}
	for _, u := range usage {
		state(u.Day).total = u.Requests
	}
	for _, x := range exports {
		state(x.Day).export = x
	}
	order := make([]store.Day, 0, len(days))
	for d := range days {
		order = append(order, d)
	}
	slices.Sort(order)
	for _, d := range order {
		s := days[d]
		exported := s.export.Exported
		if a := s.export.Pending; a != nil {
			if InDoubt(a, r.now) {
				r.inDoubt(p, d, *a)
				continue
			}
			ok, err := r.deliver(ctx, p, d, *a, true)
			if !ok || err != nil {
				return err
			}
			exported = a.To
		}
		if s.total <= exported {
			continue
		}
		sent := store.StoredTime(r.now)
		a := store.ExportAttempt{From: exported, To: s.total, Identifier: Identifier(p.Owner, d, exported, sent), Timestamp: stamp(d, r.now), Sent: sent}
		if r.full(ctx) {
			return nil
		}
		switch err := r.st.BeginExport(ctx, p.Owner, d, a); {
		case errors.Is(err, store.ErrExportMoved):
			continue // another run is exporting the day: its attempt is its to send
		case err != nil:
			return err // recorded or not, the next run reads which
		}
		if ok, err := r.deliver(ctx, p, d, a, false); !ok || err != nil {
			return err
		}
	}
	return nil
}

// inDoubt reports the pending attempt a of the owner's day, too old to
// be sent again (MaxResendAge): the day is left as it is until the
// operator settles it.
func (r *run) inDoubt(p store.Plan, day store.Day, a store.ExportAttempt) {
	r.sum.InDoubt++
	r.log.Error("meter event in doubt: sent more than MaxResendAge ago and never confirmed, Stripe may or may not have it; "+
		"the day is not exported until 'apikey billing settle' says which", slog.String("owner", p.Owner), slog.String("day", string(day)),
		slog.String("identifier", a.Identifier), slog.Int64("value", a.To-a.From), slog.Time("sent", a.Sent))
}

// full reports whether the run sends no more: stopped, at its bound, or
// too near its deadline for one more call (the send would be safe, its
// attempt recorded, but the run would end in an error).
func (r *run) full(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	if r.stop || r.sent >= r.maxSends || ok && time.Until(dl) < r.timeout {
		r.stop, r.sum.More = true, true
		return true
	}
	return false
}

// stamp is the timestamp of a meter event for day: its last second, or
// now for today (Stripe refuses one more than 5 minutes ahead).
func stamp(day store.Day, now time.Time) time.Time {
	t, _ := time.Parse(time.DateOnly, string(day))
	end := t.Add(24*time.Hour - time.Second)
	if end.After(now) {
		end = now
	}
	return end.Truncate(time.Second)
}

// deliver sends the recorded attempt a of the owner's day and, once Stripe
// has it, advances the day's export to a.To. It reports whether it did; a
// failure that ends the owner's export in this run (its attempt stays
// recorded) is false and nil, one that ends the run an error.
func (r *run) deliver(ctx context.Context, p store.Plan, day store.Day, a store.ExportAttempt, resend bool) (bool, error) {
	if r.full(ctx) {
		return false, nil
	}
	r.sent++
	err := r.send(ctx, p, a)
	var limited *rateLimited
	if errors.As(err, &limited) && limited.retryAfter <= MaxRateWait && wait(ctx, max(limited.retryAfter, time.Second)) {
		err = r.send(ctx, p, a)
	}
	var refused *refusal
	owner := slog.String("owner", p.Owner)
	switch {
	case err == nil:
		if err := r.st.AdvanceExport(ctx, p.Owner, day, a); err != nil && !errors.Is(err, store.ErrExportMoved) {
			return false, err // Stripe has it: the next run's resend is answered as a duplicate
		}
		r.sum.MeterEvents++
		if resend {
			r.sum.Resent++
		}
		return true, nil
	case ctx.Err() != nil:
		return false, ctx.Err() // interrupted: the attempt stays recorded for the next run
	case errors.As(err, &limited):
		r.stop, r.sum.RateLimited, r.sum.More = true, true, true
		r.log.Warn("Stripe's rate limit: the next sweep exports the rest", owner, slog.Duration("retry_after", limited.retryAfter))
		return false, nil
	case errors.As(err, &refused) && refused.account():
		r.stop = true
		r.log.Error("Stripe refused the secret key (STRIPE_SECRET_KEY): no usage is exported", slog.Int("status", refused.status),
			slog.String("stripe_code", refused.code), slog.String("stripe_message", scrub(refused.message)))
		return false, errors.New("stripe refused STRIPE_SECRET_KEY")
	case errors.As(err, &refused):
		r.sum.OwnersRefused++
		r.log.Error("Stripe refused the owner's meter events: the owner is skipped until its plan changes", owner,
			slog.String("stripe_customer", p.StripeCustomer), slog.Int("status", refused.status), slog.String("stripe_code", refused.code),
			slog.String("stripe_message", scrub(refused.message)), slog.String("stripe_request", refused.requestID))
		return false, r.st.RefuseBilling(ctx, p.Owner, store.BillingRefusal{PlanUpdatedAt: p.UpdatedAt, Reason: scrub(refused.message), At: r.now})
	default:
		r.sum.Failed++
		if r.failures++; r.failures >= maxFailures {
			r.stop, r.sum.More = true, true
		}
		r.log.Warn("meter event not sent: the next sweep sends it again", owner, slog.String("day", string(day)),
			slog.String("error", scrub(err.Error())))
		return false, nil
	}
}

// send makes one call to Stripe, within the call's deadline.
func (r *run) send(ctx context.Context, p store.Plan, a store.ExportAttempt) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.stripe.send(ctx, p.StripeCustomer, a.To-a.From, a.Identifier, a.Timestamp)
}

// wait waits d, or until ctx ends; it reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// stripeKey is a Stripe API key in a message: Stripe's own messages mask
// keys, and this masks whatever they leave.
var stripeKey = regexp.MustCompile(`\b(sk|rk|pk)_[A-Za-z0-9_*]+`)

// scrub masks any Stripe key in s.
func scrub(s string) string { return stripeKey.ReplaceAllString(s, "[redacted]") }
