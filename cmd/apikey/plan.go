package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/plans"
)

var planCommand = &command{
	name:    "plan",
	args:    "set|show|clear OWNER [--rate R] [--burst B] [--quota Q] [--max-keys N] [--mint-rate R] [--mint-burst B] [--stripe-customer cus_ID] [--json]",
	params:  []string{"set|show|clear", "OWNER"},
	summary: "set, show or clear an owner's plan: its limits, key cap and Stripe customer",
	details: `
An owner's plan holds its limits, in the Firestore document
{KEYS_COLLECTION}_owners/OWNER: rate_limit (requests per second per
instance), burst, monthly_quota (requests per UTC month) and max_keys (the
most active keys the owner may hold), and mint_rate and
mint_burst (the keys the owner's keys may make through the keys API,
creates and rotations, per second and at once), and stripe_customer (the
Stripe customer the sweep exports the owner's usage to: docs/billing.md).
A limit the plan does not
set (0) is the configured default: DEFAULT_RATE_LIMIT, DEFAULT_BURST,
DEFAULT_MONTHLY_QUOTA, DEFAULT_MAX_KEYS (100), and for mints 1 a second,
20 at once. An owner without a plan gets every default.

  plan set OWNER      sets the limits given by flags and keeps the plan's
                      others; a flag given as 0 returns its limit to the
                      default, --stripe-customer "" unlinks the owner from
                      Stripe. At least one flag is needed. Prints the plan
                      as show does.
  plan show OWNER     prints the stored plan and the limits in effect,
                      marking those that are defaults. With --json: one
                      object with owner, plan (null: none), updated_at,
                      effective, defaults (the effective fields that
                      come from the configuration) and stripe_customer
                      ("": not linked).
  plan clear OWNER    deletes the plan: the owner gets the defaults, and is
                      no longer linked to a Stripe customer. The owner's
                      usage documents, under the plan's, stay.

max_keys is enforced when keys are created (create, POST /v1/keys). The
plan's rate, burst and quota apply to requests, to all the owner's keys
together; a key's own limits can only be tighter. The mints bound the
keys API, within the owner's management budget of 20 calls a second, 100
at once, which they cannot exceed; this CLI is outside both.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		rate := fs.Float64("rate", 0, "set: requests per `second` on each instance, 0.001 to 1000000; 0: DEFAULT_RATE_LIMIT")
		burst := fs.Int("burst", 0, "set: the `requests` at once, at most 1000000; 0: DEFAULT_BURST (or one second's worth of the plan's rate)")
		quota := fs.Int64("quota", 0, "set: the `requests` per UTC month, at most 1000000000000; 0: DEFAULT_MONTHLY_QUOTA")
		maxKeys := fs.Int("max-keys", 0, "set: the most active `keys` the owner may hold, at most 100000; 0: DEFAULT_MAX_KEYS")
		writeRate := fs.Float64("mint-rate", 0, "set: creates and rotations through the keys API per `second`, 0.001 to 20; 0: the default, 1")
		writeBurst := fs.Int("mint-burst", 0, "set: creates and rotations through the keys API at once (`mints`), at most 100; 0: the default, 20")
		customer := fs.String("stripe-customer", "", "set: the Stripe `customer` ID (cus_...) the owner's usage is exported to; \"\": none")
		asJSON := fs.Bool("json", false, "set, show: print one JSON object instead of text")
		return func(c *cli, pos []string) error {
			limitFlags := isSet(fs, "rate") || isSet(fs, "burst") || isSet(fs, "quota") || isSet(fs, "max-keys") ||
				isSet(fs, "mint-rate") || isSet(fs, "mint-burst") || isSet(fs, "stripe-customer")
			switch pos[0] {
			case "set":
				if !limitFlags {
					return usagef("plan set needs at least one of --rate, --burst, --quota, --max-keys, --mint-rate, --mint-burst, --stripe-customer")
				}
				return c.planSet(pos[1], planFlags{fs, *rate, *burst, *quota, *maxKeys, *writeRate, *writeBurst, *customer}, *asJSON)
			case "show":
				if limitFlags {
					return usagef("plan show takes only --json")
				}
				return c.planShow(pos[1], *asJSON)
			case "clear":
				if limitFlags || *asJSON {
					return usagef("plan clear takes no flags")
				}
				return c.planClear(pos[1])
			}
			return usagef("unknown plan action %q: want set, show or clear", pos[0])
		}
	},
}

// planFlags are the limit flags of plan set, and the flag set that says
// which were given.
type planFlags struct {
	fs      *flag.FlagSet
	rate    float64
	burst   int
	quota   int64
	maxKeys int
	// writeRate and writeBurst are the mints'.
	writeRate  float64
	writeBurst int
	// customer is the Stripe customer: "" unlinks.
	customer string
}

// planInfo is an owner's stored plan, if any, and the limits in effect.
type planInfo struct {
	stored    store.Plan
	found     bool
	effective store.Plan
}

// plan reads the owner's plan and resolves it with the configuration.
func (c *cli) plan(owner string) (planInfo, error) {
	cfg, err := c.config()
	if err != nil {
		return planInfo{}, err
	}
	st, err := c.store()
	if err != nil {
		return planInfo{}, err
	}
	p, found, err := keyrules.LoadPlan(c.ctx, st, owner)
	if err != nil {
		return planInfo{}, err
	}
	return planInfo{p, found, planDefaults(cfg).Effective(p, found)}, nil
}

// fromPlan reports whether the plan sets field (a JSON name) itself.
func (p planInfo) fromPlan(field string) bool {
	if !p.found {
		return false
	}
	switch field {
	case "rate_limit":
		return p.stored.RateLimit > 0
	case "burst":
		return p.stored.Burst > 0
	case "monthly_quota":
		return p.stored.MonthlyQuota > 0
	case "max_keys":
		return p.stored.MaxKeys > 0
	case "mint_rate":
		return p.stored.MintRate > 0
	case "mint_burst":
		return p.stored.MintBurst > 0
	}
	return false
}

// source says where an effective limit comes from, for messages: "its
// plan" or "the default VARIABLE".
func (p planInfo) source(field, variable string) string {
	if p.fromPlan(field) {
		return "its plan"
	}
	return "the default " + variable
}

// planSet merges the given limits into the owner's plan and stores it.
func (c *cli) planSet(owner string, f planFlags, asJSON bool) error {
	// The owner and the flags, checked before any store call as the plan
	// they make alone; a *keyrules.LimitError's Field is the flag's name.
	given := store.Plan{Owner: owner, RateLimit: f.rate, Burst: f.burst, MonthlyQuota: f.quota, MaxKeys: f.maxKeys,
		MintRate: f.writeRate, MintBurst: f.writeBurst, StripeCustomer: f.customer}
	if err := keyrules.ValidatePlan(given); err != nil {
		if _, ok := errors.AsType[*keyrules.LimitError](err); ok {
			return fmt.Errorf("--%w", err)
		}
		return err
	}
	info, err := c.plan(owner)
	if err != nil {
		return err
	}
	p := info.stored
	if isSet(f.fs, "rate") {
		p.RateLimit = f.rate
	}
	if isSet(f.fs, "burst") {
		p.Burst = f.burst
	}
	if isSet(f.fs, "quota") {
		p.MonthlyQuota = f.quota
	}
	if isSet(f.fs, "max-keys") {
		p.MaxKeys = f.maxKeys
	}
	if isSet(f.fs, "mint-rate") {
		p.MintRate = f.writeRate
	}
	if isSet(f.fs, "mint-burst") {
		p.MintBurst = f.writeBurst
	}
	if isSet(f.fs, "stripe-customer") {
		p.StripeCustomer = f.customer
	}
	p.Owner, p.UpdatedAt = owner, store.StoredTime(c.now())
	if err := keyrules.ValidatePlan(p); err != nil { // the stored fields may have been edited by hand
		return fmt.Errorf("the plan would be %w", err)
	}
	ctx, o := c.recording("")
	if err := c.st.SetPlan(ctx, p); err != nil {
		return checkOutcome(err, fmt.Sprintf("the plan of owner %q was set", clean(owner)), fmt.Sprintf("'apikey plan show %s'", clean(owner)))
	}
	c.deliver(o)
	return c.planShow(owner, asJSON)
}

// planShow prints the owner's plan and the limits in effect.
func (c *cli) planShow(owner string, asJSON bool) error {
	if err := checkOwnerArg(owner); err != nil {
		return err
	}
	info, err := c.plan(owner)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(c.stdout, info.view(owner))
	}
	writePlan(c.stdout, owner, info)
	return nil
}

// planClear deletes the owner's plan.
func (c *cli) planClear(owner string) error {
	if err := checkOwnerArg(owner); err != nil {
		return err
	}
	st, err := c.store()
	if err != nil {
		return err
	}
	ctx, o := c.recording("")
	err = st.DeletePlan(ctx, owner)
	if err == nil {
		c.deliver(o)
	}
	if errors.Is(err, store.ErrPlanNotFound) {
		fmt.Fprintf(c.stdout, "Owner %q has no plan: it gets the defaults.\n", clean(owner))
		return nil
	}
	if err != nil {
		return checkOutcome(err, fmt.Sprintf("the plan of owner %q was cleared", clean(owner)), fmt.Sprintf("'apikey plan show %s'", clean(owner)))
	}
	fmt.Fprintf(c.stdout, "Cleared the plan of owner %q: it gets the defaults now.\n", clean(owner))
	return nil
}

// checkOwnerArg checks the OWNER argument with keyrules.ValidateOwner.
func checkOwnerArg(s string) error {
	if err := keyrules.ValidateOwner(s); err != nil {
		return fmt.Errorf("owner %w", err)
	}
	return nil
}

// planLimits are a plan's limits, in JSON.
type planLimits struct {
	RateLimit    float64 `json:"rate_limit"`
	Burst        int     `json:"burst"`
	MonthlyQuota int64   `json:"monthly_quota"`
	MaxKeys      int     `json:"max_keys"`
	MintRate     float64 `json:"mint_rate"`
	MintBurst    int     `json:"mint_burst"`
}

func limitsOf(p store.Plan) planLimits {
	return planLimits{p.RateLimit, p.Burst, p.MonthlyQuota, p.MaxKeys, p.MintRate, p.MintBurst}
}

// planView is what plan show --json prints.
type planView struct {
	Owner     string      `json:"owner"`
	Plan      *planLimits `json:"plan"` // null: no plan stored
	UpdatedAt *time.Time  `json:"updated_at"`
	Effective planLimits  `json:"effective"`
	// Defaults are the effective fields that come from the configuration.
	Defaults []string `json:"defaults"`
	// StripeCustomer is the plan's: "" when the owner is not linked.
	StripeCustomer string `json:"stripe_customer"`
}

var planFields = []string{"rate_limit", "burst", "monthly_quota", "max_keys", "mint_rate", "mint_burst"}

func (p planInfo) view(owner string) planView {
	v := planView{Owner: owner, Effective: limitsOf(p.effective), Defaults: []string{}, StripeCustomer: p.stored.StripeCustomer}
	if p.found {
		l := limitsOf(p.stored)
		v.Plan = &l
		t := p.stored.UpdatedAt.UTC()
		v.UpdatedAt = &t
	}
	for _, f := range planFields {
		if !p.fromPlan(f) {
			v.Defaults = append(v.Defaults, f)
		}
	}
	return v
}

// writePlan writes the plan as labelled lines, each effective limit marked
// "(plan)" or "(default VARIABLE)".
func writePlan(w io.Writer, owner string, p planInfo) {
	mark := func(field, variable string) string {
		if p.fromPlan(field) {
			return "(plan)"
		}
		return "(default " + variable + ")"
	}
	fmt.Fprintf(w, "owner:     %s\n", clean(owner))
	if p.found {
		fmt.Fprintf(w, "plan:      stored, updated %s\n", formatTime(p.stored.UpdatedAt))
	} else {
		fmt.Fprintf(w, "plan:      none: every limit is a default\n")
	}
	e := p.effective
	rate, burst, quota := "none", "-", "none"
	if e.RateLimit > 0 {
		rate, burst = strconv.FormatFloat(e.RateLimit, 'g', -1, 64)+"/s", strconv.Itoa(e.Burst)
	}
	if e.MonthlyQuota > 0 {
		quota = strconv.FormatInt(e.MonthlyQuota, 10) + " requests a month"
	}
	fmt.Fprintf(w, "rate:      %s %s\n", rate, mark("rate_limit", "DEFAULT_RATE_LIMIT"))
	fmt.Fprintf(w, "burst:     %s %s\n", burst, mark("burst", "DEFAULT_BURST"))
	fmt.Fprintf(w, "quota:     %s %s\n", quota, mark("monthly_quota", "DEFAULT_MONTHLY_QUOTA"))
	fmt.Fprintf(w, "max keys:  %d active %s\n", e.MaxKeys, mark("max_keys", "DEFAULT_MAX_KEYS"))
	fmt.Fprintf(w, "mints:     %s/s %s, burst %d %s\n", strconv.FormatFloat(e.MintRate, 'g', -1, 64), mintMark(p, "mint_rate"),
		e.MintBurst, mintMark(p, "mint_burst"))
	stripe := "none: usage not exported"
	if p.stored.StripeCustomer != "" {
		stripe = clean(p.stored.StripeCustomer)
	}
	fmt.Fprintf(w, "stripe:    %s\n", stripe)
}

// mintMark marks a mints' limit "(plan)" or "(default)": their
// defaults are keygate's, not a variable's.
func mintMark(p planInfo, field string) string {
	if p.fromPlan(field) {
		return "(plan)"
	}
	return "(default)"
}

// planDefaults are cfg's defaults of owners' plans.
func planDefaults(cfg apikey.Config) plans.Defaults {
	return plans.Defaults{RateLimit: cfg.DefaultRateLimit, Burst: cfg.DefaultBurst, MonthlyQuota: cfg.DefaultMonthlyQuota, MaxKeys: cfg.DefaultMaxKeys}
}
