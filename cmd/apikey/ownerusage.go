package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keygate/keygate/apikey/billing"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/problem"
)

// ownerUsageView is what usage --owner --month --json prints: the month's
// requests of each of the owner's keys, the owner's total, and per UTC day
// what is stored and what the sweep exported of it to Stripe.
type ownerUsageView struct {
	Owner string      `json:"owner"`
	Month store.Month `json:"month"`
	// StripeCustomer is the plan's: "" when the owner is not linked.
	StripeCustomer string `json:"stripe_customer"`
	// StripeRefused is Stripe's refusal of the customer under the current
	// plan: the sweep skips the owner until the plan changes. null: none.
	StripeRefused *store.BillingRefusal `json:"stripe_refused"`
	Keys          []ownerKeyUsage       `json:"keys"`
	// Total is the owner's month document: it includes keys deleted since.
	Total int64 `json:"total"`
	// Days are the month's days with requests stored or exported, oldest
	// first.
	Days []ownerDay `json:"days"`
	// Exported and Pending are the days' sums.
	Exported int64 `json:"exported"`
	Pending  int64 `json:"pending"`
}

// ownerKeyUsage is one key's month.
type ownerKeyUsage struct {
	KeyID        string `json:"key_id"`
	Hint         string `json:"hint"`
	Name         string `json:"name"`
	Status       string `json:"status"`
	Requests     int64  `json:"requests"`
	MonthlyQuota int64  `json:"monthly_quota"` // 0: none
}

// ownerDay is one UTC day of the owner: its requests stored, and those
// Stripe confirmed. Pending is the difference, stored - exported, while
// positive: requests not on the bill yet, which a later sweep sends.
type ownerDay struct {
	Day      store.Day `json:"day"`
	Stored   int64     `json:"stored"`
	Exported int64     `json:"exported"`
	Pending  int64     `json:"pending"`
	// Sending is the meter event recorded and not confirmed by Stripe:
	// the next sweep sends it again, under the same identifier.
	Sending *store.ExportAttempt `json:"sending,omitempty"`
	// State says what becomes of the day: see dayState.
	State string `json:"state"`
}

// The states of a day, for the operator: exported (all of it), pending (a
// sweep will send the rest), sending (an event is out, unconfirmed: a
// sweep sends it again), refused (Stripe refused the customer), not linked
// (no customer: nothing is sent), too old (outside the days the sweep
// exports, Stripe's 35), in doubt (an event out, unconfirmed, that the
// sweep sends no more: older than billing.MaxResendAge, or its day too
// old; Stripe may or may not have it: 'apikey billing settle').
const (
	dayExported  = "exported"
	dayPending   = "pending"
	daySending   = "sending"
	dayRefused   = "refused"
	dayNotLinked = "not linked"
	dayTooOld    = "too old"
	dayInDoubt   = "in doubt"
)

// ownerUsage prints the month's requests of each of an owner's keys, the
// owner's total as stored, and per day what is stored and exported.
func (c *cli) ownerUsage(owner, monthText string, asCSV, asJSON, daysOnly bool) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	month, err := store.ParseMonth(monthText)
	if err != nil {
		return fmt.Errorf("--month %q: want a month YYYY-MM", monthText)
	}
	st, err := c.store()
	if err != nil {
		return err
	}
	usage, err := usageOf(st)
	if err != nil {
		return err
	}
	bill, ok := st.(store.BillingStore)
	if !ok {
		return errors.New("this store keeps no exports")
	}
	keys, err := c.ownerKeys(st, owner)
	if err != nil {
		return err
	}
	now := c.now()
	v := ownerUsageView{Owner: owner, Month: month, Keys: []ownerKeyUsage{}, Days: []ownerDay{}}
	var sum int64
	for _, k := range keys {
		n, err := usage.MonthlyUsage(c.ctx, k.ID, month)
		if err != nil {
			return err
		}
		sum += n
		v.Keys = append(v.Keys, ownerKeyUsage{k.ID, k.Hint, k.Name, string(k.Status(now)), n, k.MonthlyQuota})
	}
	if v.Total, err = usage.OwnerMonthlyUsage(c.ctx, owner, month); err != nil {
		return err
	}
	plan, _, err := keyrules.LoadPlan(c.ctx, st, owner)
	if err != nil {
		return err
	}
	v.StripeCustomer = plan.StripeCustomer
	if v.StripeCustomer != "" {
		r, err := bill.BillingRefused(c.ctx, owner)
		if err != nil {
			return err
		}
		if r.Refuses(plan) {
			v.StripeRefused = &r
		}
	}
	first, last := store.Day(string(month)+"-01"), store.Day(string(month)+"-31")
	stored, err := usage.OwnerDailyUsage(c.ctx, owner, first, last)
	if err != nil {
		return err
	}
	exported, err := bill.Exported(c.ctx, owner, first, last)
	if err != nil {
		return err
	}
	v.Days = mergeDays(stored, exported)
	oldest := oldestExportable(now)
	for i := range v.Days {
		d := &v.Days[i]
		d.State = dayState(*d, v, oldest, now)
		v.Exported += d.Exported
		v.Pending += d.Pending
	}

	c.noteInFlight(last)
	if total := v.Total; total != sum && !daysOnly {
		fmt.Fprintf(c.stderr, "note: the owner's total for %s, %d, is not the sum of its keys listed, %d: "+
			"it includes keys deleted since, and leaves out requests written before usage was counted per owner.\n",
			month, total, sum)
	}
	switch {
	case asJSON:
		return writeJSON(c.stdout, v)
	case asCSV && daysOnly:
		return writeDaysCSV(c.stdout, v)
	case asCSV:
		return writeKeysCSV(c.stdout, v)
	}
	if !daysOnly {
		if err := writeKeysTable(c.stdout, v); err != nil {
			return err
		}
		fmt.Fprintln(c.stdout)
	}
	return writeDaysTable(c.stdout, v)
}

// mergeDays joins the days stored and the days exported, oldest first.
func mergeDays(stored []store.DayUsage, exported []store.DayExport) []ownerDay {
	days := []ownerDay{}
	i, j := 0, 0
	for i < len(stored) || j < len(exported) {
		var d ownerDay
		switch {
		case j == len(exported) || i < len(stored) && stored[i].Day < exported[j].Day:
			d = ownerDay{Day: stored[i].Day, Stored: stored[i].Requests}
			i++
		case i == len(stored) || exported[j].Day < stored[i].Day:
			d = ownerDay{Day: exported[j].Day, Exported: exported[j].Exported, Sending: exported[j].Pending}
			j++
		default:
			d = ownerDay{Day: stored[i].Day, Stored: stored[i].Requests, Exported: exported[j].Exported, Sending: exported[j].Pending}
			i, j = i+1, j+1
		}
		d.Pending = max(d.Stored-d.Exported, 0)
		days = append(days, d)
	}
	return days
}

// oldestExportable is the first day the sweep exports at now: today and
// the days before it, billing.WindowDays in all, within Stripe's 35 days.
func oldestExportable(now time.Time) store.Day {
	return store.DayOf(now.AddDate(0, 0, -(billing.WindowDays - 1)))
}

// dayState is what becomes of day d of the view v at now.
func dayState(d ownerDay, v ownerUsageView, oldest store.Day, now time.Time) string {
	switch {
	case d.Pending == 0 && d.Sending == nil:
		return dayExported
	case d.Sending != nil && (d.Day < oldest || billing.InDoubt(d.Sending, now)):
		return dayInDoubt
	case d.Day < oldest:
		return dayTooOld
	case v.StripeCustomer == "":
		return dayNotLinked
	case v.StripeRefused != nil:
		return dayRefused
	case d.Sending != nil:
		return daySending
	}
	return dayPending
}

// keysHeader is the header of the keys' CSV, which billing scripts read.
var keysHeader = []string{"key_id", "hint", "name", "status", "month", "requests", "monthly_quota"}

func (k ownerKeyUsage) row(month store.Month) []string {
	quota := ""
	if k.MonthlyQuota > 0 {
		quota = strconv.FormatInt(k.MonthlyQuota, 10)
	}
	return []string{k.KeyID, k.Hint, k.Name, k.Status, string(month), strconv.FormatInt(k.Requests, 10), quota}
}

// writeKeysCSV writes a row per key and the owner's total last.
func writeKeysCSV(w io.Writer, v ownerUsageView) error {
	rows := [][]string{keysHeader}
	for _, k := range v.Keys {
		rows = append(rows, k.row(v.Month))
	}
	rows = append(rows, []string{"total", "", "", "", string(v.Month), strconv.FormatInt(v.Total, 10), ""})
	cw := csv.NewWriter(w)
	cw.WriteAll(rows)
	return cw.Error()
}

// writeKeysTable writes a line per key and the owner's total last.
func writeKeysTable(w io.Writer, v ownerUsageView) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHINT\tNAME\tSTATUS\tMONTH\tREQUESTS\tQUOTA")
	for _, k := range v.Keys {
		row := k.row(v.Month)
		fmt.Fprintln(tw, clean(row[0])+"\t"+clean(row[1])+"\t"+orDash(clean(row[2]))+"\t"+strings.Join(row[3:], "\t"))
	}
	fmt.Fprintf(tw, "total\t\t\t\t%s\t%d\t\n", v.Month, v.Total)
	return tw.Flush()
}

// daysHeader is the header of the days' CSV.
var daysHeader = []string{"day", "stored", "exported", "pending", "state"}

func (d ownerDay) row() []string {
	return []string{string(d.Day), strconv.FormatInt(d.Stored, 10), strconv.FormatInt(d.Exported, 10), strconv.FormatInt(d.Pending, 10), d.State}
}

// daysTotal is the days' sums, as a row.
func (v ownerUsageView) daysTotal() []string {
	var stored int64
	for _, d := range v.Days {
		stored += d.Stored
	}
	return []string{"total", strconv.FormatInt(stored, 10), strconv.FormatInt(v.Exported, 10), strconv.FormatInt(v.Pending, 10), ""}
}

// writeDaysCSV writes a row per day and the sums last.
func writeDaysCSV(w io.Writer, v ownerUsageView) error {
	rows := [][]string{daysHeader}
	for _, d := range v.Days {
		rows = append(rows, d.row())
	}
	rows = append(rows, v.daysTotal())
	cw := csv.NewWriter(w)
	cw.WriteAll(rows)
	return cw.Error()
}

// writeDaysTable writes a line per day, the sums, and the owner's Stripe
// customer.
func writeDaysTable(w io.Writer, v ownerUsageView) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DAY\tSTORED\tEXPORTED\tPENDING\tSTATE")
	for _, d := range v.Days {
		fmt.Fprintln(tw, strings.Join(d.row(), "\t"))
	}
	fmt.Fprintln(tw, strings.Join(v.daysTotal(), "\t"))
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case v.StripeCustomer == "":
		fmt.Fprintln(w, "stripe: not linked: nothing is exported ('apikey plan set OWNER --stripe-customer cus_...' links it)")
	case v.StripeRefused != nil:
		fmt.Fprintf(w, "stripe: customer %s, refused by Stripe at %s: %s; skipped until the plan changes\n",
			clean(v.StripeCustomer), formatTime(v.StripeRefused.At), oneLine(clean(problem.Shorten(v.StripeRefused.Reason))))
	default:
		fmt.Fprintf(w, "stripe: customer %s\n", clean(v.StripeCustomer))
	}
	return nil
}
