package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/keygate/keygate/apikey/events"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/view"
)

// command is one subcommand. To add one, write its setup and append it to
// commands: dispatch, help and usage pick it up from there.
type command struct {
	name   string
	args   string   // the synopsis after the name, e.g. "ID [--json]"
	params []string // the positional arguments, e.g. {"ID"}
	// optional: the positional arguments may be left out.
	optional bool
	summary  string // one line for the command list
	details  string // the text of "apikey help <name>", without the flags
	// setup defines the command's flags on fs and returns the function that
	// runs the command once fs has parsed them, with the positional
	// arguments (exactly len(params) of them).
	setup func(fs *flag.FlagSet) func(c *cli, pos []string) error
}

// commands lists the subcommands in the order of the usage text.
var commands = []*command{
	createCommand,
	listCommand,
	showCommand,
	rotateCommand,
	revokeCommand,
	deleteCommand,
	usageCommand,
	planCommand,
	billingCommand,
	configCommand,
	secretScanningCommand,
	sweepCommand,
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

// usage writes the full usage: commands, configuration and exit status.
func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, "apikey manages keygate API keys in Firestore.\n\n")
	c.shortUsage(w)
	fmt.Fprint(w, `
Configuration comes from the same environment variables as the application:
GOOGLE_CLOUD_PROJECT, FIRESTORE_DATABASE, KEYS_COLLECTION, KEY_PREFIX,
STORE_TIMEOUT (the deadline of each Firestore call), DEFAULT_MAX_KEYS and the
other DEFAULT_ limits, and KEY_DEFAULT_SCOPES (the scopes a key stored
without any grants, which show and list display for such a key). With
FIRESTORE_EMULATOR_HOST set, apikey uses the Firestore emulator, on project
demo-keygate unless GOOGLE_CLOUD_PROJECT is set.

Exit status: 0 on success; 1 on a failure, with one line "apikey: <message>"
on stderr; 2 on a usage error.
`)
}

// shortUsage writes the list of commands.
func (c *cli) shortUsage(w io.Writer) {
	fmt.Fprint(w, "Usage:\n")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  apikey %s %s\n      %s\n", cmd.name, cmd.args, cmd.summary)
	}
	fmt.Fprint(w, "  apikey help [command]\n      show this help, or a command's\n")
}

// commandHelp writes the help of one command: synopsis, details and flags.
func (c *cli) commandHelp(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "Usage: apikey %s %s\n\n%s\n", cmd.name, cmd.args, strings.TrimSpace(cmd.details))
	fs := newFlagSet(cmd)
	cmd.setup(fs)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprint(w, "\nFlags:\n")
			first = false
		}
		arg, text := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		fmt.Fprintf(w, "  --%s%s\n        %s\n", f.Name, arg, text)
	})
}

var createCommand = &command{
	name:    "create",
	args:    "--owner O [--name N] [--scopes a,b] [--expires 720h] [--rate R --burst B] [--quota Q] [--force] [--json]",
	summary: "mint a new key and print it (the only time it is shown)",
	details: `
Mints a new API key for an owner, stores it (only its SHA-256, the key ID, and
a short hint are stored) and prints it. This is the only time the key is ever
shown: hand it over now.

Standard output gets the key alone on one line; the details (ID, owner, name,
scopes, hint, expiry) go to standard error, so that

    KEY=$(apikey create --owner acme)

captures just the key. With --json, standard output gets one JSON object with
id, key, owner, name, scopes, hint, created_at, expires_at (null: never),
revoked_at and status, and standard error gets nothing but warnings.

Scopes belong to the application, which decides what each one allows:
--scopes takes a comma-separated list of any scope names, such as
things:read,billing. A scope name is one or more words of lowercase letters
a-z, digits 0-9, '_', '-' and '.', each word starting with a letter or digit,
joined by ':'; at most ` + strconv.Itoa(keyrules.MaxScopeLen) + ` bytes, and at most ` + strconv.Itoa(keyrules.MaxScopes) + ` scopes a key. Without
--scopes the key stores none, and the application grants it its default
scopes, KEY_DEFAULT_SCOPES (for the bingo function: ` + bingoDefaultScopes + `).
show and list display such a key with the KEY_DEFAULT_SCOPES of apikey's
own environment: set it as the application does to see what the key grants.
With KEY_SCOPES set to the scopes the application checks (for the bingo
function: ` + bingoScopes + `), create warns on standard error of a
scope not among them, and of the one it is near (bingo:chek: did you mean
bingo:check?), and creates the key all the same.

An owner may hold at most max_keys active keys (revoked and expired ones do
not count): its plan's (see 'apikey help plan'), else DEFAULT_MAX_KEYS (100).
create refuses a key past that limit unless --force is given.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		owner := fs.String("owner", "", "the `owner` (customer) of the key: 1 to 128 characters, no control or format characters (required)")
		name := fs.String("name", "", "a `name` for the key: at most 100 characters, no control or format characters")
		scopes := fs.String("scopes", "", "comma-separated `list` of scope names, each words of a-z 0-9 _ - . joined by ':', at most "+
			strconv.Itoa(keyrules.MaxScopeLen)+" bytes, at most "+strconv.Itoa(keyrules.MaxScopes)+" scopes; none: the key stores none and gets the application's default scopes, KEY_DEFAULT_SCOPES (for the bingo function: "+bingoDefaultScopes+")")
		expires := fs.String("expires", "", "the key's lifetime, a Go `duration` from 1s to 87600h, such as 720h (30 days); none means it never expires")
		rateLimit := fs.Float64("rate", 0, "the key's rate limit, in requests per `second` on each instance, from 0.001 to 1000000; 0: DEFAULT_RATE_LIMIT")
		burst := fs.Int("burst", 0, "the `requests` the key may make at once, at most 1000000 (with --rate; default: one second's worth)")
		quota := fs.Int64("quota", 0, "the `requests` the key may make per UTC month, at most 1000000000000; 0: no quota")
		force := fs.Bool("force", false, "create the key even if the owner holds its plan's max_keys active keys already")
		asJSON := fs.Bool("json", false, "print one JSON object instead of text")
		return func(c *cli, _ []string) error {
			if !isSet(fs, "owner") {
				return usagef("missing required flag --owner")
			}
			return c.create(createArgs{*owner, *name, *scopes, *expires, *rateLimit, *burst, *quota, *force, *asJSON})
		}
	},
}

// createArgs are the flags of create, as given.
type createArgs struct {
	owner, name, scopes, expires string
	rate                         float64
	burst                        int
	quota                        int64
	force, json                  bool
}

// create mints, stores and prints a key.
func (c *cli) create(a createArgs) error {
	if err := checkOwner(a.owner); err != nil {
		return err
	}
	if err := checkName(a.name); err != nil {
		return err
	}
	scopes, err := parseScopes(a.scopes)
	if err != nil {
		return err
	}
	lifetime, err := parseExpires(a.expires)
	if err != nil {
		return err
	}
	if err := checkLimits(a.rate, a.burst, a.quota); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	c.warnUnknownScopes("scope", scopes)
	st, err := c.store()
	if err != nil {
		return err
	}
	now := c.now()
	tmpl := store.Key{Owner: a.owner, Name: a.name, Scopes: scopes, CreatedAt: store.StoredTime(now),
		RateLimit: a.rate, Burst: a.burst, MonthlyQuota: a.quota}
	if lifetime > 0 {
		tmpl.ExpiresAt = store.StoredTime(now.Add(lifetime))
	}
	secret, k, err := keyrules.Mint(cfg.Prefix, tmpl)
	if err != nil {
		return err
	}
	ctx, o := c.recording("")
	if a.force {
		err = st.Create(ctx, k)
	} else {
		var plan planInfo
		if plan, err = c.plan(a.owner); err == nil {
			err = st.CreateCapped(ctx, k, plan.effective.MaxKeys, now)
			if errors.Is(err, store.ErrKeyLimitReached) {
				return fmt.Errorf("owner %q already holds %s active keys, the most %s allows: revoke one, raise the limit with 'apikey plan set OWNER --max-keys N', or pass --force",
					clean(a.owner), strconv.Itoa(plan.effective.MaxKeys), plan.source("max_keys", "DEFAULT_MAX_KEYS"))
			}
		}
	}
	if err != nil {
		if errors.Is(err, store.ErrKeyExists) {
			return errors.New("the new key's ID is already taken (this should never happen); run the command again")
		}
		return checkOutcome(err, "key "+k.ID+" was created",
			"'apikey show "+k.ID+"': if it is there, revoke it ('apikey revoke "+k.ID+"'), since its key cannot be shown again, and create another")
	}
	c.deliver(o)
	if a.json {
		return writeJSON(c.stdout, view.NewKeyView{Key: secret, KeyView: c.view(k, now)})
	}
	fmt.Fprintln(c.stdout, secret)
	c.writeDetails(c.stderr, k, now)
	fmt.Fprintln(c.stderr, "This key will not be shown again: store it safely now. It cannot be recovered.")
	return nil
}

var listCommand = &command{
	name:    "list",
	args:    "--owner O [--leaked] [--json]",
	summary: "list an owner's keys, newest first",
	details: `
Lists the keys of one owner, newest first, as a table with the columns ID,
HINT, NAME, SCOPES, CREATED, EXPIRES and STATUS (active, expired or revoked).
With --json, prints a JSON array (empty: []) of objects with id, owner, name,
scopes, hint, created_at, expires_at, revoked_at and status, and leaked_at
and leak_url for a key GitHub's secret scanning found in public: its STATUS
says so, with the URL. --leaked lists only those. Keys themselves are never
stored, so they are never listed.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		owner := fs.String("owner", "", "the `owner` whose keys to list (required)")
		asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
		leaked := fs.Bool("leaked", false, "list only the keys found in public (GitHub secret scanning)")
		return func(c *cli, _ []string) error {
			if !isSet(fs, "owner") {
				return usagef("missing required flag --owner")
			}
			return c.list(*owner, *leaked, *asJSON)
		}
	},
}

// list prints an owner's keys.
func (c *cli) list(owner string, leaked, asJSON bool) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	st, err := c.store()
	if err != nil {
		return err
	}
	keys, err := c.ownerKeys(st, owner)
	if err != nil {
		return err
	}
	if leaked {
		keys = slices.DeleteFunc(keys, func(k store.Key) bool { return k.LeakedAt.IsZero() })
	}
	now := c.now()
	if asJSON {
		views := make([]view.KeyView, 0, len(keys))
		for _, k := range keys {
			views = append(views, c.view(k, now))
		}
		return writeJSON(c.stdout, views)
	}
	if len(keys) == 0 && leaked {
		fmt.Fprintf(c.stdout, "No leaked keys for owner %q in %s.\n", owner, c.where())
		return nil
	}
	if len(keys) == 0 {
		fmt.Fprintf(c.stdout, "No keys for owner %q in %s.\n", owner, c.where())
		return nil
	}
	// Where they were read, on stderr, so that the table stays the output.
	fmt.Fprintf(c.stderr, "%s of owner %q in %s:\n", plural(len(keys), "key", "keys"), owner, c.where())
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHINT\tNAME\tSCOPES\tCREATED\tEXPIRES\tLAST_USED\tSTATUS")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			clean(k.ID), clean(k.Hint), orDash(clean(k.Name)), scopeText(k.Scopes, "(default)"),
			formatTime(k.CreatedAt), orNever(k.ExpiresAt), lastUse(k.LastUsedAt), statusText(k, now))
	}
	return tw.Flush()
}

// listPageSize is how many keys list and usage --owner read at a time.
const listPageSize = 200

// ownerKeys returns all the owner's keys, newest first, read a page at a time.
func (c *cli) ownerKeys(st keyStore, owner string) ([]store.Key, error) {
	var keys []store.Key
	for k, err := range keyrules.OwnerKeys(c.ctx, st, owner, listPageSize) {
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

var showCommand = &command{
	name:    "show",
	args:    "ID [--json]",
	params:  []string{"ID"},
	summary: "show one key",
	details: `
Shows one key by its ID (the 64 hex digits that create and list print): owner,
name, scopes, hint, creation, expiry, revocation, last use (to the usage
flush), status, and the key that replaced it by rotation. With --json,
prints one JSON object, the same as an element of "list --json".`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		asJSON := fs.Bool("json", false, "print a JSON object instead of text")
		return func(c *cli, pos []string) error { return c.show(pos[0], *asJSON) }
	},
}

// show prints one key.
func (c *cli) show(id string, asJSON bool) error {
	st, err := c.keyStoreFor(id)
	if err != nil {
		return err
	}
	k, err := st.Get(c.ctx, id)
	if err != nil {
		return notFound(id, err)
	}
	now := c.now()
	if asJSON {
		return writeJSON(c.stdout, c.view(k, now))
	}
	c.writeDetails(c.stdout, k, now)
	return nil
}

var rotateCommand = &command{
	name:    "rotate",
	args:    "ID [--grace 24h] [--force] [--json]",
	params:  []string{"ID"},
	summary: "replace a key with a new one; the old one expires after a grace period",
	details: `
Mints a new key with the same owner, name, scopes and expiry as the key ID,
and in the same transaction makes the old key expire at now + grace (never
later than it already expires), so that its users have the grace period to
switch. The new key is printed as by create: the key alone on standard output,
the details on standard error; with --json, one object with the new key and,
under "replaces", the old one. Only an active key can be rotated, and not
one that was rotated already while its replacement is active: rotate the
replacement, or revoke it first (say, when its key was lost).

The old key stays active until its grace ends, so a rotation may take an
owner one key over its max_keys (see create), but only one: rotate refuses
while the owner holds more than max_keys active keys (another rotation's
grace running, say), unless --force is given. A rotation with --grace 0s
adds no active key, and the cap never refuses it.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		grace := fs.String("grace", "24h", "how long the old key keeps working, a Go `duration` from 0s to 720h")
		force := fs.Bool("force", false, "rotate the key even if its owner holds more than its plan's max_keys active keys already")
		asJSON := fs.Bool("json", false, "print one JSON object instead of text")
		return func(c *cli, pos []string) error { return c.rotate(pos[0], *grace, *force, *asJSON) }
	},
}

// rotate replaces one key.
func (c *cli) rotate(id, graceText string, force, asJSON bool) error {
	grace, err := parseGrace(graceText)
	if err != nil {
		return err
	}
	st, err := c.keyStoreFor(id)
	if err != nil {
		return err
	}
	old, err := st.Get(c.ctx, id)
	if err != nil {
		return notFound(id, err)
	}
	now := store.StoredTime(c.now())
	secret, repl, err := keyrules.Mint(c.cfg.Prefix, keyrules.Replacement(old, now))
	if err != nil {
		return err
	}
	replacedBy := old.ReplacedBy
	ctx, o := c.recording("")
	if force {
		old, err = st.Rotate(ctx, id, repl, now.Add(grace))
	} else {
		var plan planInfo
		if plan, err = c.plan(old.Owner); err == nil {
			old, err = st.RotateCapped(ctx, id, repl, now.Add(grace), plan.effective.MaxKeys)
			if errors.Is(err, store.ErrKeyLimitReached) {
				return fmt.Errorf("owner %q holds more than %s active keys, the most %s allows, counting keys in a rotation's grace: a rotation may go one key over it, not more; revoke one, raise the limit with 'apikey plan set OWNER --max-keys N', or pass --force",
					clean(old.Owner), strconv.Itoa(plan.effective.MaxKeys), plan.source("max_keys", "DEFAULT_MAX_KEYS"))
			}
		}
	}
	switch {
	case errors.Is(err, store.ErrKeyInactive):
		return fmt.Errorf("key %s is revoked or expired: only an active key can be rotated", id)
	case errors.Is(err, store.ErrKeyReplaced):
		if replacedBy == "" { // replaced since it was read
			replacedBy = "'apikey show " + id + "' names it"
		}
		return fmt.Errorf("key %s was rotated already and its replacement (%s) is active: rotate the replacement instead, or revoke it to rotate this key again", id, replacedBy)
	case errors.Is(err, store.ErrInvalidOwner):
		return fmt.Errorf("key %s has an owner that is not a valid owner name, whose keys cannot be counted: pass --force to rotate it anyway", id)
	}
	if err != nil {
		return checkOutcome(notFound(id, err), "key "+id+" was rotated",
			"'apikey show "+repl.ID+"' (the new key): if it is there, the rotation took effect; revoke the new key, since it cannot be shown again, and rotate again")
	}
	c.deliver(o)
	if asJSON {
		return writeJSON(c.stdout, view.RotatedKeyView{
			NewKeyView: view.NewKeyView{Key: secret, KeyView: c.view(repl, now)},
			Replaces:   c.view(old, now)})
	}
	fmt.Fprintln(c.stdout, secret)
	c.writeDetails(c.stderr, repl, now)
	fmt.Fprintf(c.stderr, "Replaces key %s, which now expires at %s.\n", old.ID, formatTime(old.ExpiresAt))
	fmt.Fprintln(c.stderr, "This key will not be shown again: store it safely now. It cannot be recovered.")
	return nil
}

var usageCommand = &command{
	name:     "usage",
	args:     "ID [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json] | --owner O --month YYYY-MM [--days] [--csv|--json] | replay [--dry-run] FILE",
	params:   []string{"ID|replay", "FILE"},
	optional: true,
	summary:  "show a key's requests per day, or an owner's per key and per day for a month, stored and exported to Stripe (billing); replay unwritten counts",
	details: `
With a key ID: the key's stored requests per UTC day from --from to --to
(default: this month so far, at most 92 days) and its total for the month of
--to, with its quota. With --json, one object as GET /v1/usage answers.

With --owner and --month: one line per key of the owner with its requests in
that month, then the owner's total, for billing. The total is read from the
owner's own month document ({KEYS_COLLECTION}_owners/OWNER/usage/YYYY-MM),
written with the keys' counts: it includes keys deleted since, and leaves
out requests written by a keygate from before usage was counted per owner.
When it is not the sum of the keys listed, a note on stderr says so. Then
one line per UTC day of the owner: its requests stored, those exported to
Stripe (confirmed by Stripe), those pending (stored - exported), and the
day's state: exported; pending (the next sweep sends the difference);
sending (a meter event is out, unconfirmed: the next sweep sends it again
under the same identifier); refused (Stripe refused the customer: skipped
until the plan changes); not linked (no Stripe customer: nothing is sent);
too old (before the sweep's 35 days: Stripe takes it no more); in doubt
(an event out unconfirmed that the sweep sends no more, since it was
recorded over 23 hours ago or its day is too old: Stripe may or may not
have it; see 'apikey billing settle').
Then the days' sums and the owner's Stripe customer (docs/billing.md).
With --days, only the days. With --csv, CSV: without --days, the keys,
header key_id,hint,name,status,month,requests,monthly_quota and, last, a
row whose key_id is "total"; with --days, the days, header
day,stored,exported,pending,state and, last, a row whose day is "total".
With --json, one object with both: owner, month, stripe_customer,
stripe_refused, keys, total, days, exported, pending.

Counts reach Firestore within USAGE_FLUSH_INTERVAL (10s by default) of the
requests, so the last seconds of traffic may not show yet: when the days
shown run to the present, a note on stderr says so.

With replay: writes the counts that an instance could not write before its
shutdown deadline (SHUTDOWN_TIMEOUT) and logged instead, as ERROR entries
with the attribute usage_unwritten. FILE (- for standard input) holds log
entries: the JSON that
  gcloud logging read 'jsonPayload.usage_unwritten:*' --freshness=30d --format=json
prints, or the function's own log lines. Each batch is written under its
instance and number, which the store applies once: replaying the same
entries again changes nothing. Give all of an instance's entries in one
run: a batch numbered below one already written is taken as written.
Nothing in FILE is trusted: a count is written only if its key exists and
belongs to the owner it names, its day is neither before the key was made,
nor after now, nor after the key was revoked or expired (plus KEY_CACHE_TTL
and KEY_STALE_TTL), and its requests are at most 864,000,000 per key, day
and instance; an instance's batch is written only if it follows the last
one the store applied without a gap. Each count or batch refused is printed
on stderr with its line in FILE and why, the rest written, and the exit
status is then 1. With --dry-run: prints what would be written, and
writes nothing.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		from := fs.String("from", "", "the first `day`, YYYY-MM-DD")
		to := fs.String("to", "", "the last `day`, YYYY-MM-DD")
		asJSON := fs.Bool("json", false, "print one JSON object instead of text")
		owner := fs.String("owner", "", "the `owner` whose keys to bill")
		month := fs.String("month", "", "the `month` to bill, YYYY-MM")
		asCSV := fs.Bool("csv", false, "print CSV")
		daysOnly := fs.Bool("days", false, "with --owner: print only the days, stored and exported")
		dryRun := fs.Bool("dry-run", false, "with replay: print what would be written, and write nothing")
		return func(c *cli, pos []string) error {
			switch {
			case len(pos) > 0 && pos[0] == "replay":
				if len(pos) != 2 || fs.NFlag() > 0 && !(fs.NFlag() == 1 && isSet(fs, "dry-run")) {
					return usagef("usage replay takes a FILE of log entries (- for standard input) and no flags but --dry-run")
				}
				return c.replayUsage(pos[1], *dryRun)
			case isSet(fs, "dry-run"):
				return usagef("--dry-run goes with replay FILE only")
			case len(pos) == 1 && !isSet(fs, "owner") && !isSet(fs, "month") && !*asCSV && !isSet(fs, "days"):
				return c.keyUsage(pos[0], *from, *to, *asJSON)
			case len(pos) == 0 && isSet(fs, "owner") && isSet(fs, "month") && *from == "" && *to == "" && !(*asJSON && *asCSV):
				return c.ownerUsage(*owner, *month, *asCSV, *asJSON, *daysOnly)
			}
			return usagef("give a key ID (with --from, --to, --json), --owner and --month (with --days, --csv or --json), or replay FILE")
		}
	},
}

// keyUsage prints one key's usage.
func (c *cli) keyUsage(id, fromText, toText string, asJSON bool) error {
	st, err := c.keyStoreFor(id)
	if err != nil {
		return err
	}
	usage, err := usageOf(st)
	if err != nil {
		return err
	}
	from, to, err := keyrules.UsageRange(fromText, toText, c.now())
	if bad, ok := errors.AsType[*keyrules.DayRangeError](err); ok {
		if bad.Err == keyrules.ErrNotADate {
			return fmt.Errorf("--%s %q: want a date YYYY-MM-DD", bad.Field, bad.Value)
		}
		return fmt.Errorf("--from %s --to %s: want at most %d days, from first", from, to, keyrules.MaxUsageDays)
	}
	k, err := st.Get(c.ctx, id)
	if err != nil {
		return notFound(id, err)
	}
	days, err := usage.DailyUsage(c.ctx, id, from, to)
	if err != nil {
		return err
	}
	month := to.Month()
	total, err := usage.MonthlyUsage(c.ctx, id, month)
	if err != nil {
		return err
	}
	c.noteInFlight(to)
	v := view.UsageView{KeyID: id, Month: month, MonthTotal: total, From: from, To: to, Days: days}
	if k.MonthlyQuota > 0 {
		v.MonthlyQuota = &k.MonthlyQuota
	}
	if asJSON {
		return writeJSON(c.stdout, v)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DAY\tREQUESTS")
	for _, d := range days {
		fmt.Fprintf(tw, "%s\t%d\n", d.Day, d.Requests)
	}
	quota := "no quota"
	if k.MonthlyQuota > 0 {
		quota = fmt.Sprintf("quota %d", k.MonthlyQuota)
	}
	fmt.Fprintf(tw, "%s total\t%d\t(%s)\n", month, total, quota)
	return tw.Flush()
}

// noteInFlight says on stderr, when the days shown run to last, that the
// latest requests may not be counted yet: each instance writes its counts
// at most every USAGE_FLUSH_INTERVAL, so a usage read just after a request
// shows 0 and nothing says why.
func (c *cli) noteInFlight(last store.Day) {
	every := c.cfg.FlushInterval
	if last < store.DayOf(c.now().Add(-every)) {
		return
	}
	fmt.Fprintf(c.stderr, "note: each instance stores its counts every USAGE_FLUSH_INTERVAL (%v): the requests of the last %v may not show yet.\n", every, every)
}

var revokeCommand = &command{
	name:    "revoke",
	args:    "ID [--descendants]",
	params:  []string{"ID"},
	summary: "revoke a key: it stops working, and stays listed",
	details: `
Revokes a key: its document gets revoked_at, and the function refuses the key
from then on (running instances learn of it from the change feed written with
it, within 2 seconds). The key stays listed, with status revoked.
Revoking a key that is already revoked succeeds and says when it was revoked.

With --descendants, also revokes every key minted through it with the keys
API, transitively (created_by: the keys it created or rotated, the keys
those created, and so on), and prints each; keys made with this CLI are
nobody's descendants. It reads the owner's keys, at most 100,000, to find
them, before it revokes anything.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		tree := fs.Bool("descendants", false, "also revoke every key minted through it, transitively")
		return func(c *cli, pos []string) error { return c.revoke(pos[0], *tree) }
	},
}

// revoke revokes one key and, with descendants, the keys minted through
// it.
func (c *cli) revoke(id string, descendants bool) error {
	st, err := c.keyStoreFor(id)
	if err != nil {
		return err
	}
	var tree []store.Key
	if descendants {
		k, err := st.Get(c.ctx, id)
		if err != nil {
			return notFound(id, err)
		}
		if tree, err = keyrules.Descendants(c.ctx, st, k, 0); err != nil {
			return fmt.Errorf("finding the keys minted through key %s: %w; nothing was revoked", id, err)
		}
	}
	if err := c.revokeOne(st, id); err != nil {
		return err
	}
	if !descendants {
		return nil
	}
	if len(tree) == 0 {
		fmt.Fprintf(c.stdout, "No key was minted through key %s.\n", id)
		return nil
	}
	for i, k := range tree {
		if err := c.revokeOne(st, k.ID); err != nil {
			return fmt.Errorf("revoked key %s and %d of the %d keys minted through it; then: %w", id, i, len(tree), err)
		}
	}
	fmt.Fprintf(c.stdout, "Revoked key %s and the %d keys minted through it.\n", id, len(tree))
	return nil
}

// revokeOne revokes one key and says so.
func (c *cli) revokeOne(st keyStore, id string) error {
	at := c.now()
	ctx, o := c.recording(events.ReasonCLI)
	k, err := st.Revoke(ctx, id, at)
	if err != nil {
		return checkOutcome(notFound(id, err), "key "+id+" was revoked", "'apikey show "+id+"', or revoke it again: that is harmless")
	}
	c.deliver(o)
	if !k.RevokedAt.Equal(store.StoredTime(at)) {
		fmt.Fprintf(c.stdout, "Key %s was already revoked at %s.\n", k.ID, formatTime(k.RevokedAt))
		return nil
	}
	fmt.Fprintf(c.stdout, "Revoked key %s (owner %q, hint %s) at %s.\n", k.ID, clean(k.Owner), clean(k.Hint), formatTime(k.RevokedAt))
	return nil
}

var deleteCommand = &command{
	name:    "delete",
	args:    "ID",
	params:  []string{"ID"},
	summary: "delete a key's document (prefer revoke)",
	details: `
Deletes a key's document: the function then treats the key as one that never
existed, and the key disappears from list. Prefer revoke, which keeps the
record; delete is for cleaning up.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error { return c.delete(pos[0]) }
	},
}

// delete deletes one key.
func (c *cli) delete(id string) error {
	st, err := c.keyStoreFor(id)
	if err != nil {
		return err
	}
	ctx, o := c.recording("")
	if err := st.Delete(ctx, id); err != nil {
		return checkOutcome(notFound(id, err), "key "+id+" was deleted", "'apikey show "+id+"'")
	}
	c.deliver(o)
	fmt.Fprintf(c.stdout, "Deleted key %s.\n", id)
	return nil
}

// keyStoreFor checks that id is a key ID and returns the store.
func (c *cli) keyStoreFor(id string) (keyStore, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	if err := checkID(id, cfg.Prefix); err != nil {
		return nil, err
	}
	return c.store()
}

// notFound turns ErrKeyNotFound into the message for id, and passes any
// other error on.
func notFound(id string, err error) error {
	if errors.Is(err, store.ErrKeyNotFound) {
		return &lookupError{fmt.Sprintf("no key with ID %s", id)}
	}
	return err
}
