// Command apikey is the operator CLI of keygate: it mints, lists, shows,
// rotates, revokes and deletes the API keys that an apikey.Gate (such as the
// bingo Cloud Function's) checks, in the same Firestore collection the Gate
// reads, and shows their usage and sets their owners' plans.
//
// Usage:
//
//	apikey create --owner O [--name N] [--scopes a,b] [--expires 720h] [--force] [--json]
//	apikey list --owner O [--json]
//	apikey show ID [--json]
//	apikey rotate ID [--grace 24h] [--force] [--json]
//	apikey revoke ID
//	apikey delete ID
//	apikey plan set OWNER [--rate R] [--burst B] [--quota Q] [--max-keys N] [--json]
//	apikey plan show OWNER [--json]
//	apikey plan clear OWNER
//	apikey help [command]
//
// create prints the new key on the first and only line of its standard
// output, and everything else on standard error, so that
//
//	KEY=$(apikey create --owner acme)
//
// captures just the key. It is the only time the key is ever shown: only its
// SHA-256 (the key ID) and a short hint are stored.
//
// apikey reads the same environment variables as the library's
// apikey.LoadConfig, which the function reads too (GOOGLE_CLOUD_PROJECT,
// FIRESTORE_DATABASE, KEYS_COLLECTION, KEY_PREFIX, STORE_TIMEOUT,
// KEY_DEFAULT_SCOPES, ...). With FIRESTORE_EMULATOR_HOST set it talks to the
// Firestore emulator, on project demo-keygate unless GOOGLE_CLOUD_PROJECT is
// set.
//
// It depends on the library alone, not on the bingo function, so that
// library users get it with
//
//	go install github.com/keygate/keygate/cmd/apikey@latest
//
// Exit status: 0 on success; 1 on a failure, with one line
// "apikey: <message>" on standard error; 2 on a usage error (unknown command
// or flag, missing argument), with a short usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// main runs the command line with the process's environment and clock.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ(), time.Now)
	stop()
	os.Exit(code)
}

// run runs the command line args (without the program name) and returns the
// exit status: 0 on success, 1 on a failure and 2 on a usage error. It reads
// the configuration from environ (as os.Environ gives it; the first of a
// name counts, as for os.Getenv) and the time through now, and writes only
// to stdout and stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string, now func() time.Time) int {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if _, dup := vars[k]; !dup {
				vars[k] = v
			}
		}
	}
	c := &cli{
		ctx:     ctx,
		stdout:  stdout,
		stderr:  stderr,
		getenv:  func(name string) string { return vars[name] },
		environ: environ,
		now:     now,
		open:    openFirestore,
	}
	return c.main(args)
}

// openFirestore returns the Firestore store cfg names, with every call
// bounded by STORE_TIMEOUT (cfg.StoreTimeout) through store.WithTimeout,
// the one layer that puts deadlines on store calls, and every write whose
// answer is lost read back (store.ConfirmWrites), as the Gate does. It
// does not connect.
func openFirestore(cfg apikey.Config) keyStore {
	fs := firestorestore.New(firestorestore.Config{Project: cfg.Project, Database: cfg.Database, Collection: cfg.Collection})
	return closingStore{store.ConfirmWrites(store.WithTimeout(fs, cfg.StoreTimeout), cfg.StoreTimeout), fs, cfg.StoreTimeout}
}

// closingStore is a store with deadlines, closed and explained through the
// store under them, which also tells the batches it applied (usage replay).
type closingStore struct {
	store.Store
	fs      *firestorestore.Store
	timeout time.Duration // STORE_TIMEOUT, on AppliedSeq as on the rest
}

func (s closingStore) Close() error            { return s.fs.Close() }
func (s closingStore) Explain(err error) error { return s.fs.Explain(err) }

// AppliedSeq implements store.AppliedReader.
func (s closingStore) AppliedSeq(ctx context.Context, instance string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.fs.AppliedSeq(ctx, instance)
}

// keyStore is the store the commands use: a KeyStore and PlanStore that
// must be closed.
type keyStore interface {
	store.KeyStore
	store.PlanStore
	Close() error
}

// cli is one run of the command line: its inputs, outputs and, once a
// command needs them, the configuration and the store.
type cli struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// environ is the whole environment, whose names config check looks
	// through for mistyped variables.
	environ []string
	now     func() time.Time
	// open returns the store for a configuration; it must not connect.
	open func(apikey.Config) keyStore

	cfg *apikey.Config
	st  keyStore
}

// main dispatches args, reports the outcome on stderr and returns the exit
// status.
func (c *cli) main(args []string) int {
	err := c.dispatch(args)
	if c.st != nil {
		// The command's outcome is already decided (a write has been
		// committed or not); an error closing the connection changes
		// nothing about it, so it is not reported.
		_ = c.st.Close()
	}
	return c.report(err)
}

// dispatch runs the command named by args[0] with the rest of args.
func (c *cli) dispatch(args []string) error {
	if len(args) == 0 {
		return &usageError{msg: "no command given"}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return c.help(args[1:])
	}
	cmd := lookup(args[0])
	if cmd == nil {
		return &usageError{msg: fmt.Sprintf("unknown command %q", args[0])}
	}
	fs := newFlagSet(cmd)
	exec := cmd.setup(fs)
	pos, err := parseInterleaved(fs, args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.commandHelp(c.stdout, cmd)
		return nil
	case err != nil:
		return &usageError{cmd: cmd, msg: err.Error()}
	case len(pos) < len(cmd.params) && !cmd.optional:
		return &usageError{cmd: cmd, msg: fmt.Sprintf("missing %s", strings.Join(cmd.params[len(pos):], " "))}
	case len(pos) > len(cmd.params):
		return &usageError{cmd: cmd, msg: fmt.Sprintf("%s takes %d argument(s), got %d", cmd.name, len(cmd.params), len(pos))}
	}
	err = exec(c, pos)
	if ue, ok := errors.AsType[*usageError](err); ok && ue.cmd == nil {
		ue.cmd = cmd
	}
	return err
}

// help is the help command: the overall usage, or one command's.
func (c *cli) help(args []string) error {
	switch len(args) {
	case 0:
		c.usage(c.stdout)
		return nil
	case 1:
		cmd := lookup(args[0])
		if cmd == nil {
			return &usageError{msg: fmt.Sprintf("unknown command %q", args[0])}
		}
		c.commandHelp(c.stdout, cmd)
		return nil
	}
	return &usageError{msg: "help takes at most one command name"}
}

// report writes err, if any, to stderr and returns the exit status for it.
func (c *cli) report(err error) int {
	if err == nil {
		return 0
	}
	if ue, ok := errors.AsType[*usageError](err); ok {
		fmt.Fprintf(c.stderr, "apikey: %s\n", oneLine(ue.msg))
		if ue.cmd != nil {
			fmt.Fprintf(c.stderr, "usage: apikey %s %s\nRun 'apikey help %s' for details.\n", ue.cmd.name, ue.cmd.args, ue.cmd.name)
		} else {
			c.shortUsage(c.stderr)
		}
		return 2
	}
	if e, ok := c.st.(interface{ Explain(error) error }); ok && fromStore(err) {
		// A store's error says what to do, and where the CLI looked: a
		// leftover GOOGLE_CLOUD_PROJECT is a common reason for "no key".
		// A write of unknown outcome reached the store: its message says
		// what to do.
		if !errors.Is(err, store.ErrOutcomeUnknown) {
			err = e.Explain(err)
		}
		err = fmt.Errorf("%w (%s)", err, c.where())
	}
	if errors.Is(err, store.ErrBusy) {
		// Not an outage: others wrote the same documents all along.
		err = fmt.Errorf("%w; nothing was changed: run the command again, or raise STORE_TIMEOUT", err)
	}
	fmt.Fprintf(c.stderr, "apikey: %s\n", oneLine(err.Error()))
	return 1
}

// checkOutcome says, of a write whose outcome is unknown
// (store.ErrOutcomeUnknown: its answer was lost and reading it back
// failed), what may have happened and how to look; any other error passes.
func checkOutcome(err error, happened, check string) error {
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		return err
	}
	return fmt.Errorf("the store did not confirm whether %s (%w); check with %s", happened, err, check)
}

// lookupError is a key or plan the store does not hold.
type lookupError struct{ msg string }

func (e *lookupError) Error() string { return e.msg }

// fromStore reports whether err came from the store rather than from the
// command line: a lookup that found nothing, or a call that failed.
func fromStore(err error) bool {
	if _, ok := errors.AsType[*lookupError](err); ok {
		return true
	}
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.OK {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		strings.Contains(err.Error(), "creating Firestore client")
}

// where names the Firestore project and database the CLI uses, for its
// messages: a leftover GOOGLE_CLOUD_PROJECT is a common reason for "no keys".
func (c *cli) where() string {
	if c.cfg == nil {
		return "no configuration read"
	}
	project := c.cfg.Project
	if project == "" {
		project = "detected from the credentials"
	}
	w := fmt.Sprintf("project %s, database %s", project, c.cfg.Database)
	if host := c.getenv("FIRESTORE_EMULATOR_HOST"); host != "" {
		w += ", emulator at " + host
	}
	return w
}

// config returns the configuration, reading it from the environment the
// first time.
func (c *cli) config() (apikey.Config, error) {
	if c.cfg == nil {
		cfg, err := apikey.LoadConfig(c.getenv)
		if err != nil {
			return apikey.Config{}, err
		}
		c.cfg = &cfg
	}
	return *c.cfg, nil
}

// store returns the key store, creating it the first time. Every call on it
// is bounded by STORE_TIMEOUT.
func (c *cli) store() (keyStore, error) {
	if c.st == nil {
		cfg, err := c.config()
		if err != nil {
			return nil, err
		}
		c.st = c.open(cfg)
	}
	return c.st, nil
}

// usageOf is st's usage, for the commands that read or write it.
func usageOf(st keyStore) (store.UsageStore, error) {
	usage, ok := st.(store.UsageStore)
	if !ok {
		return nil, errors.New("this store keeps no usage")
	}
	return usage, nil
}

// usageError is a mistake in the command line itself: exit status 2, with a
// short usage.
type usageError struct {
	cmd *command // the command whose usage to show; nil for the overall one
	msg string
}

func (e *usageError) Error() string { return e.msg }

// usagef returns a usage error of the running command.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// newFlagSet returns an empty flag set for cmd that prints nothing itself.
func newFlagSet(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet("apikey "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseInterleaved parses args with fs, allowing flags both before and after
// the positional arguments ("show ID --json" and "show --json ID"). After
// "--", everything is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// keyLike matches anything shaped like an API key of any prefix.
var keyLike = regexp.MustCompile(`[a-z0-9]{1,16}_[0-9A-Za-z]{40,}`)

// cutKeyLike matches the start of something shaped like an API key where
// the library's messages cut a quoted value short (problem.QuoteShort ends
// it with `"...`): most of a key's body, which must not be shown either.
var cutKeyLike = regexp.MustCompile(`[a-z0-9]{1,16}_[0-9A-Za-z]{8,}"\.\.\.`)

// oneLine makes msg a single line, and redacts anything in it that looks like
// an API key, whole or cut short (someone may paste a key where an ID or a
// value belongs): error messages must never show a key.
func oneLine(msg string) string {
	msg = keyLike.ReplaceAllString(msg, "[redacted API key]")
	msg = cutKeyLike.ReplaceAllString(msg, `[redacted API key]"...`)
	return strings.Join(strings.Fields(msg), " ")
}

// plural is n with the noun that fits it: "1 key", "2 keys".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
