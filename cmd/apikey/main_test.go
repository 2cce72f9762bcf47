package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/view"
)

func TestMain(m *testing.M) { os.Exit(emulator.Main(m)) }

// clock is an injected clock that moves on by step at every reading.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

// Advance moves the clock on by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start is the injected clock's first reading; it has nanoseconds, which the
// stores drop.
var start = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

// harness runs the command line against a project of its own on the
// emulator.
type harness struct {
	t     *testing.T
	env   map[string]string
	clock *clock
}

// where is what the CLI appends to a store's error: the project, database
// and emulator it used.
func (h *harness) where() string {
	return " (project " + h.env["GOOGLE_CLOUD_PROJECT"] + ", database (default), emulator at " + h.env["FIRESTORE_EMULATOR_HOST"] + ")"
}

// newHarness returns a harness on a fresh emulator project; the test skips
// (or fails under KEYGATE_REQUIRE_EMULATOR) without an emulator.
func newHarness(t *testing.T) *harness {
	t.Helper()
	host, project := emulator.Project(t)
	return &harness{
		t: t,
		env: map[string]string{
			"FIRESTORE_EMULATOR_HOST": host,
			"GOOGLE_CLOUD_PROJECT":    project,
			// Generous, so that a slow first emulator call cannot flake.
			"STORE_TIMEOUT": "30s",
			// As the bingo function's operator sets it, so that show and
			// list display what a key without scopes grants.
			"KEY_DEFAULT_SCOPES": bingoDefaults,
		},
		clock: &clock{t: start, step: time.Second},
	}
}

// bingoDefaults are the bingo function's default scopes (package keygate's
// DefaultScopes), which apikey cannot import.
const bingoDefaults = "bingo:check,usage:read"

// result is what one run printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

func (h *harness) getenv(name string) string { return h.env[name] }

// environ is the harness's environment as os.Environ gives it, for run.
func (h *harness) environ() []string { return environOf(h.env) }

// environOf is vars as os.Environ gives an environment.
func environOf(vars map[string]string) []string {
	var environ []string
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	return environ
}

// run runs the command line args.
func (h *harness) run(args ...string) result {
	h.t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(h.t.Context(), args, &stdout, &stderr, h.environ(), h.clock.Now)
	return result{code, stdout.String(), stderr.String()}
}

// ok runs args and fails the test unless they exit 0.
func (h *harness) ok(args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 0 {
		h.t.Fatalf("apikey %s: exit %d, stderr:\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// createJSON creates a key with args added to "create --json" and returns
// the printed object.
func (h *harness) createJSON(args ...string) createdJSON {
	h.t.Helper()
	r := h.ok(append([]string{"create", "--json"}, args...)...)
	var c createdJSON
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		h.t.Fatalf("create --json printed %q: %v", r.stdout, err)
	}
	return c
}

// showJSON returns the key as "show ID --json" prints it.
func (h *harness) showJSON(id string) keyJSON {
	h.t.Helper()
	r := h.ok("show", id, "--json")
	var k keyJSON
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil {
		h.t.Fatalf("show --json printed %q: %v", r.stdout, err)
	}
	return k
}

// listJSON returns the keys as "list --owner owner --json" prints them.
func (h *harness) listJSON(owner string) []keyJSON {
	h.t.Helper()
	r := h.ok("list", "--owner", owner, "--json")
	var keys []keyJSON
	if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil {
		h.t.Fatalf("list --json printed %q: %v", r.stdout, err)
	}
	return keys
}

// document returns the Firestore document of the key id, or nil if there is
// none.
func (h *harness) document(id string) map[string]any {
	h.t.Helper()
	return h.documentIn("", id)
}

// ownerDocument returns the owner's document, which holds its plan, or nil
// if there is none.
func (h *harness) ownerDocument(owner string) map[string]any {
	h.t.Helper()
	return h.documentIn("_owners", owner)
}

// documentIn returns document id of the keys' collection with suffix added
// to its name, or nil if there is none.
func (h *harness) documentIn(suffix, id string) map[string]any {
	h.t.Helper()
	cfg, err := apikey.LoadConfig(h.getenv)
	if err != nil {
		h.t.Fatal(err)
	}
	st := firestorestore.New(firestorestore.Config{Project: cfg.Project, Database: cfg.Database, Collection: cfg.Collection})
	defer st.Close()
	client, err := st.Client(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	snap, err := client.Collection(cfg.Collection + suffix).Doc(id).Get(h.t.Context())
	if err != nil {
		if snap != nil && !snap.Exists() {
			return nil
		}
		h.t.Fatalf("reading document %s: %v", id, err)
	}
	return snap.Data()
}

// keyJSON and createdJSON are what show, list and create print: the
// package's key views.
type (
	keyJSON     = view.KeyView
	createdJSON = view.NewKeyView
)

// stringsIn returns every string in a decoded document, however nested.
func stringsIn(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, stringsIn(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, e := range v {
			out = append(out, k)
			out = append(out, stringsIn(e)...)
		}
		return out
	}
	return nil
}

// secretParts are the strings that must never appear outside create's
// output: the key, and its random body (the hint shows only 4+4 characters).
func secretParts(key string) []string {
	i := strings.IndexByte(key, '_')
	return []string{key, key[i+1 : len(key)-6]}
}

// checkNoSecret fails the test if where contains key or its body.
func checkNoSecret(t *testing.T, what, where, key string) {
	t.Helper()
	for _, s := range secretParts(key) {
		if strings.Contains(where, s) {
			t.Errorf("%s contains the key (or its body):\n%s", what, where)
			return
		}
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		args        []string
		json        bool
		wantName    string
		wantScopes  []string
		wantExpires time.Duration // 0: never
		// unsetDefaults runs without KEY_DEFAULT_SCOPES.
		unsetDefaults bool
		// wantScopesLine is the scopes line of the plain details; "" for
		// the scopes joined.
		wantScopesLine string
	}{
		{
			name:           "plain minimal",
			args:           []string{"--owner", "acme"},
			wantScopes:     strings.Split(bingoDefaults, ","), // stored as none; shown as granted
			wantScopesLine: "(none: it gets the default scopes, KEY_DEFAULT_SCOPES=bingo:check,usage:read)",
		},
		{
			name:           "plain minimal without KEY_DEFAULT_SCOPES",
			args:           []string{"--owner", "acme"},
			unsetDefaults:  true,
			wantScopes:     []string{}, // stored as none; the defaults are unknown here
			wantScopesLine: "(none: it gets the application's default scopes, KEY_DEFAULT_SCOPES, unset here; for the bingo function: bingo:check,usage:read)",
		},
		{
			name:          "json minimal without KEY_DEFAULT_SCOPES",
			args:          []string{"--owner", "acme"},
			json:          true,
			unsetDefaults: true,
			wantScopes:    []string{},
		},
		{
			name:       "plain, any well-formed scopes",
			args:       []string{"--owner", "acme", "--scopes", "things:read,billing,a.b-c_d:x:9"},
			wantScopes: []string{"things:read", "billing", "a.b-c_d:x:9"},
		},
		{
			name:        "plain full",
			args:        []string{"--owner", "grandma", "--name", "bingo-night", "--scopes", " bingo:check , usage:read", "--expires", "720h"},
			wantName:    "bingo-night",
			wantScopes:  []string{"bingo:check", "usage:read"},
			wantExpires: 720 * time.Hour,
		},
		{
			name:       "json minimal",
			args:       []string{"--owner", "acme"},
			json:       true,
			wantScopes: strings.Split(bingoDefaults, ","), // stored as none; shown as granted
		},
		{
			name:        "json full, flags with =",
			args:        []string{"--owner=Ünïcode Owner 🎲", "--name=n", "--scopes=keys:manage", "--expires=90m"},
			json:        true,
			wantName:    "n",
			wantScopes:  []string{"keys:manage"},
			wantExpires: 90 * time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tt.unsetDefaults {
				delete(h.env, "KEY_DEFAULT_SCOPES")
			}
			args := append([]string{"create"}, tt.args...)
			if tt.json {
				args = append(args, "--json")
			}
			r := h.ok(args...)
			owner := ""
			for i, a := range tt.args {
				if a == "--owner" {
					owner = tt.args[i+1]
				} else if v, ok := strings.CutPrefix(a, "--owner="); ok {
					owner = v
				}
			}

			var got createdJSON
			if tt.json {
				if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
					t.Fatalf("stdout is not one JSON object: %v\n%s", err, r.stdout)
				}
				var raw map[string]any
				json.Unmarshal([]byte(r.stdout), &raw)
				for _, f := range []string{"id", "key", "owner", "name", "scopes", "hint", "created_at", "expires_at"} {
					if _, ok := raw[f]; !ok {
						t.Errorf("JSON lacks %q: %s", f, r.stdout)
					}
				}
				if sc, ok := raw["scopes"].([]any); !ok || len(sc) != len(tt.wantScopes) {
					t.Errorf("scopes = %#v, want a list of %d, never null", raw["scopes"], len(tt.wantScopes))
				}
				if tt.wantExpires == 0 && raw["expires_at"] != nil {
					t.Errorf("expires_at = %v, want null", raw["expires_at"])
				}
				if r.stderr != "" {
					t.Errorf("stderr = %q, want nothing with --json", r.stderr)
				}
			} else {
				lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
				if len(lines) != 1 || !strings.HasSuffix(r.stdout, "\n") {
					t.Fatalf("stdout = %q, want the key alone on one line", r.stdout)
				}
				got.Key = lines[0]
				got.ID = keyformat.ID(got.Key)
				if !strings.Contains(r.stderr, "id:       "+got.ID+"\n") {
					t.Errorf("stderr lacks the ID line:\n%s", r.stderr)
				}
				if !strings.HasSuffix(r.stderr, "This key will not be shown again: store it safely now. It cannot be recovered.\n") {
					t.Errorf("stderr lacks the reminder:\n%s", r.stderr)
				}
				scopesLine := tt.wantScopesLine
				if scopesLine == "" {
					scopesLine = strings.Join(tt.wantScopes, ",")
				}
				if !strings.Contains(r.stderr, "\nscopes:   "+scopesLine+"\n") {
					t.Errorf("stderr lacks the scopes line %q:\n%s", scopesLine, r.stderr)
				}
			}
			key := got.Key
			if err := keyformat.Parse(key, "kg"); err != nil {
				t.Fatalf("printed key %q does not parse: %v", key, err)
			}
			if id := keyformat.ID(key); got.ID != id {
				t.Errorf("id = %s, want KeyID(key) = %s", got.ID, id)
			}
			checkNoSecret(t, "stderr", r.stderr, key)

			if tt.json {
				if got.Owner != owner || got.Name != tt.wantName || !slices.Equal(got.Scopes, tt.wantScopes) ||
					got.Hint != keyformat.Hint(key) || !got.CreatedAt.Equal(start.Truncate(time.Microsecond)) ||
					got.Status != "active" || got.RevokedAt != nil {
					t.Errorf("create --json = %+v", got)
				}
			}

			// The stored key, as show sees it.
			k := h.showJSON(got.ID)
			if k.Owner != owner || k.Name != tt.wantName || !slices.Equal(k.Scopes, tt.wantScopes) || k.Hint != keyformat.Hint(key) {
				t.Errorf("stored key = %+v", k)
			}
			if !k.CreatedAt.Equal(start.Truncate(time.Microsecond)) {
				t.Errorf("created_at = %v, want %v", k.CreatedAt, start)
			}
			switch {
			case tt.wantExpires == 0 && k.ExpiresAt != nil:
				t.Errorf("expires_at = %v, want null", k.ExpiresAt)
			case tt.wantExpires != 0 && (k.ExpiresAt == nil || !k.ExpiresAt.Equal(start.Add(tt.wantExpires).Truncate(time.Microsecond))):
				t.Errorf("expires_at = %v, want %v", k.ExpiresAt, start.Add(tt.wantExpires))
			}
			if tt.json && (!got.CreatedAt.Equal(k.CreatedAt) || (got.ExpiresAt == nil) != (k.ExpiresAt == nil) ||
				(got.ExpiresAt != nil && !got.ExpiresAt.Equal(*k.ExpiresAt))) {
				t.Errorf("create printed times %v/%v, stored %v/%v", got.CreatedAt, got.ExpiresAt, k.CreatedAt, k.ExpiresAt)
			}

			// The document exists, and no field holds the key.
			doc := h.document(got.ID)
			if doc == nil {
				t.Fatalf("no document %s", got.ID)
			}
			if doc["owner"] != owner || doc["hint"] != keyformat.Hint(key) {
				t.Errorf("document = %v", doc)
			}
			// Without --scopes the key stores none: the application's
			// defaults, whatever they are when it is used, apply.
			stored, _ := doc["scopes"].([]any)
			if explicit := slices.ContainsFunc(tt.args, func(a string) bool { return strings.HasPrefix(a, "--scopes") }); !explicit && len(stored) != 0 ||
				explicit && len(stored) != len(tt.wantScopes) {
				t.Errorf("stored scopes = %v, want %d", doc["scopes"], len(tt.wantScopes))
			}
			for _, s := range stringsIn(doc) {
				checkNoSecret(t, "document field", s, key)
			}
		})
	}
}

// TestCreateNeverLeaksKey checks that create prints the key only once, on
// stdout: never on stderr, whatever the flags.
func TestCreateNeverLeaksKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, args := range [][]string{
		{"create", "--owner", "a"},
		{"create", "--owner", "a", "--name", "x", "--scopes", "bingo:check", "--expires", "1h"},
		{"create", "--owner", "a", "--json"},
	} {
		r := h.ok(args...)
		key := strings.TrimSpace(r.stdout)
		if strings.HasPrefix(key, "{") {
			var c createdJSON
			json.Unmarshal([]byte(r.stdout), &c)
			key = c.Key
			if strings.Count(r.stdout, key) != 1 {
				t.Errorf("%v: stdout shows the key %d times", args, strings.Count(r.stdout, key))
			}
		}
		if keyformat.Parse(key, "kg") != nil {
			t.Fatalf("%v: no key on stdout: %q", args, r.stdout)
		}
		checkNoSecret(t, "stderr of "+strings.Join(args, " "), r.stderr, key)
		// Nor do the other commands ever print it.
		id := keyformat.ID(key)
		for _, other := range [][]string{
			{"show", id}, {"show", id, "--json"}, {"list", "--owner", "a"}, {"list", "--owner", "a", "--json"},
		} {
			r := h.ok(other...)
			checkNoSecret(t, strings.Join(other, " "), r.stdout+r.stderr, key)
		}
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var acme []string // IDs, oldest first
	for _, name := range []string{"first", "second", "third"} {
		acme = append(acme, h.createJSON("--owner", "acme", "--name", name).ID)
		h.clock.Advance(time.Hour)
	}
	other := h.createJSON("--owner", "other", "--scopes", "usage:read").ID

	keys := h.listJSON("acme")
	var got []string
	for _, k := range keys {
		got = append(got, k.ID)
		if k.Owner != "acme" {
			t.Errorf("list --owner acme returned a key of %q", k.Owner)
		}
	}
	want := slices.Clone(acme)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Errorf("list --owner acme IDs = %v, want newest first %v", got, want)
	}
	if len(keys) == 3 && (keys[0].Name != "third" || keys[2].Name != "first") {
		t.Errorf("names = %q %q %q", keys[0].Name, keys[1].Name, keys[2].Name)
	}

	if keys := h.listJSON("other"); len(keys) != 1 || keys[0].ID != other || !slices.Equal(keys[0].Scopes, []string{"usage:read"}) {
		t.Errorf("list --owner other = %+v, want only %s", keys, other)
	}
	if r := h.ok("list", "--owner", "other"); !strings.HasPrefix(r.stderr, `1 key of owner "other" in `) {
		t.Errorf("list --owner other stderr = %q, want it to count 1 key", r.stderr)
	}

	// JSON never holds a "key" member.
	r := h.ok("list", "--owner", "acme", "--json")
	var raw []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, o := range raw {
		if _, ok := o["key"]; ok {
			t.Errorf("list --json object has a key member: %v", o)
		}
	}

	// An owner without keys.
	if r := h.ok("list", "--owner", "nobody", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("list --json of an owner without keys = %q, want []", r.stdout)
	}
	if r := h.ok("list", "--owner", "nobody"); !strings.Contains(r.stdout, "No keys") {
		t.Errorf("list of an owner without keys = %q", r.stdout)
	}

	// The table: header, then the rows newest first.
	r = h.ok("list", "--owner", "acme")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("table has %d lines, want header + 3:\n%s", len(lines), r.stdout)
	}
	if f := strings.Fields(lines[0]); !slices.Equal(f, []string{"ID", "HINT", "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST_USED", "STATUS"}) {
		t.Errorf("header = %q", lines[0])
	}
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 8 || f[0] != want[i] || f[3] != "(default)" || f[5] != "never" || f[6] != "never" || f[7] != "active" {
			t.Errorf("row %d = %q", i, line)
		}
	}
	if want := `3 keys of owner "acme" in ` + strings.TrimSuffix(h.where(), ")")[len(" ("):] + ":\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q: where the keys were read", r.stderr, want)
	}
}

func TestShow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.createJSON("--owner", "acme", "--name", "laptop", "--scopes", "bingo:check,keys:manage", "--expires", "24h")

	r := h.ok("show", c.ID)
	for _, want := range []string{
		"id:       " + c.ID, "owner:    acme", "name:     laptop", "scopes:   bingo:check,keys:manage",
		"hint:     " + c.Hint, "created:  2030-01-02T03:04:05Z", "expires:  2030-01-03T03:04:05Z",
		"revoked:  -", "last use: never", "status:   active",
	} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}

	// Flags before or after the ID.
	after := h.ok("show", c.ID, "--json").stdout
	before := h.ok("show", "--json", c.ID).stdout
	if after != before {
		t.Errorf("show ID --json = %s\nshow --json ID = %s", after, before)
	}
	k := h.showJSON(c.ID)
	if k.ID != c.ID || k.Status != "active" || k.RevokedAt != nil {
		t.Errorf("show --json = %+v", k)
	}

	h.clock.Advance(25 * time.Hour)
	if k := h.showJSON(c.ID); k.Status != "expired" {
		t.Errorf("status a day later = %q, want expired", k.Status)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.createJSON("--owner", "acme")
	keep := h.createJSON("--owner", "acme").ID

	h.clock.Advance(time.Hour)
	revokedAt := h.clock.t.Truncate(time.Second).Format(time.RFC3339)
	r := h.ok("revoke", c.ID)
	if want := "Revoked key " + c.ID; !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, revokedAt) {
		t.Errorf("revoke printed %q, want %q... at %s", r.stdout, want, revokedAt)
	}
	k := h.showJSON(c.ID)
	if k.Status != "revoked" || k.RevokedAt == nil || k.RevokedAt.Format(time.RFC3339) != revokedAt {
		t.Errorf("after revoke: status %q, revoked_at %v", k.Status, k.RevokedAt)
	}
	if doc := h.document(c.ID); doc["revoked_at"] == nil {
		t.Errorf("document has no revoked_at: %v", doc)
	}

	// Again: succeeds, and keeps the first time.
	h.clock.Advance(time.Hour)
	r = h.ok("revoke", c.ID)
	if want := "Key " + c.ID + " was already revoked at " + revokedAt + ".\n"; r.stdout != want {
		t.Errorf("second revoke printed %q, want %q", r.stdout, want)
	}
	if k2 := h.showJSON(c.ID); !k2.RevokedAt.Equal(*k.RevokedAt) {
		t.Errorf("second revoke changed revoked_at from %v to %v", k.RevokedAt, k2.RevokedAt)
	}

	// The list shows it revoked, and the other key untouched.
	for _, k := range h.listJSON("acme") {
		want := map[string]string{c.ID: "revoked", keep: "active"}[k.ID]
		if k.Status != want {
			t.Errorf("list: %s status %q, want %q", k.ID, k.Status, want)
		}
	}
	if out := h.ok("list", "--owner", "acme").stdout; !strings.Contains(out, "revoked") {
		t.Errorf("table does not show revoked:\n%s", out)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.createJSON("--owner", "acme")
	keep := h.createJSON("--owner", "acme").ID

	if r := h.ok("delete", c.ID); r.stdout != "Deleted key "+c.ID+".\n" {
		t.Errorf("delete printed %q", r.stdout)
	}
	if doc := h.document(c.ID); doc != nil {
		t.Errorf("document still exists: %v", doc)
	}
	if keys := h.listJSON("acme"); len(keys) != 1 || keys[0].ID != keep {
		t.Errorf("list after delete = %+v, want only %s", keys, keep)
	}
	r := h.run("delete", c.ID)
	if r.code != 1 || r.stderr != "apikey: no key with ID "+c.ID+h.where()+"\n" {
		t.Errorf("second delete: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestErrors checks exit statuses and messages: 1 with exactly one line
// "apikey: ..." on stderr for failures, 2 with a usage for usage errors.
func TestErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	unknown := strings.Repeat("ab", 32)
	key, err := keyformat.New("kg")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string // added to the harness's
		code int
		// stderr is the exact stderr for code 1; for code 2, its first line.
		stderr string
		// match, if set, is matched against stderr instead.
		match string
	}{
		// Unknown IDs.
		{"show unknown ID", []string{"show", unknown}, nil, 1, "apikey: no key with ID " + unknown + h.where() + "\n", ""},
		{"show unknown ID json", []string{"show", unknown, "--json"}, nil, 1, "apikey: no key with ID " + unknown + h.where() + "\n", ""},
		{"revoke unknown ID", []string{"revoke", unknown}, nil, 1, "apikey: no key with ID " + unknown + h.where() + "\n", ""},
		{"delete unknown ID", []string{"delete", unknown}, nil, 1, "apikey: no key with ID " + unknown + h.where() + "\n", ""},

		// Bad IDs.
		{"bad ID short", []string{"show", "abc123"}, nil, 1, `apikey: invalid key ID "abc123": want 64 lowercase hex digits, as printed by create and list` + "\n", ""},
		{"bad ID uppercase", []string{"revoke", strings.ToUpper(unknown)}, nil, 1, "", `^apikey: invalid key ID "ABAB.*": want 64 lowercase hex digits`},
		{"bad ID not hex", []string{"delete", strings.Repeat("g", 64)}, nil, 1, "", `^apikey: invalid key ID "g+": want 64`},
		{"key given as ID", []string{"revoke", key}, nil, 1, "apikey: that is an API key, not a key ID; its key ID is " + keyformat.ID(key) + "\n", ""},
		{"other prefix key given as ID", []string{"show", "zz" + key[2:]}, nil, 1, "apikey: invalid key ID: want 64 lowercase hex digits, as printed by create and list\n", ""},

		// Bad scopes.
		{"malformed scope", []string{"create", "--owner", "a", "--scopes", "Bingo"}, nil, 1,
			`apikey: scope "Bingo" is not a scope name: want words of a-z, 0-9, '_', '-' and '.' joined by ':', at most 64 bytes, such as things:read` + "\n", ""},
		{"scope with inner space", []string{"create", "--owner", "a", "--scopes", "bingo: check"}, nil, 1, "", `^apikey: scope "bingo: check" is not a scope name`},
		{"long scope", []string{"create", "--owner", "a", "--scopes", strings.Repeat("s", 65)}, nil, 1, "", `^apikey: scope "s{40}"\.\.\. is not a scope name: .*at most 64 bytes`},
		{"too many scopes", []string{"create", "--owner", "a", "--scopes", strings.Repeat("s,", 32) + "t"}, nil, 1, "apikey: 33 scopes: want at most 32\n", ""},
		{"duplicate scope", []string{"create", "--owner", "a", "--scopes", "usage:read, usage:read"}, nil, 1, `apikey: scope "usage:read" is listed twice` + "\n", ""},
		{"empty scope item", []string{"create", "--owner", "a", "--scopes", "usage:read,,bingo:check"}, nil, 1, "", `^apikey: --scopes "usage:read,,bingo:check" has an empty item`},

		// Bad durations.
		{"bad duration", []string{"create", "--owner", "a", "--expires", "30d"}, nil, 1, `apikey: --expires "30d": want a Go duration from 1s to 87600h, such as 720h (30 days)` + "\n", ""},
		{"zero duration", []string{"create", "--owner", "a", "--expires", "0s"}, nil, 1, "", `^apikey: --expires "0s": want a Go duration from 1s to 87600h`},
		{"negative duration", []string{"create", "--owner", "a", "--expires=-1h"}, nil, 1, "", `^apikey: --expires "-1h": want`},

		// Bad owners and names.
		{"empty owner", []string{"create", "--owner", ""}, nil, 1, "apikey: --owner is 0 characters long: want 1 to 128\n", ""},
		{"long owner", []string{"create", "--owner", strings.Repeat("é", 129)}, nil, 1, "apikey: --owner is 129 characters long: want 1 to 128\n", ""},
		{"control owner", []string{"list", "--owner", "a\tb"}, nil, 1, "apikey: --owner contains the control character U+0009\n", ""},
		{"long name", []string{"create", "--owner", "a", "--name", strings.Repeat("n", 101)}, nil, 1, "apikey: --name is 101 characters long: want at most 100\n", ""},
		{"control name", []string{"create", "--owner", "a", "--name", "x\x1b[31m"}, nil, 1, "apikey: --name contains the control character U+001B\n", ""},

		// Bad configuration.
		{"bad prefix", []string{"create", "--owner", "a"}, map[string]string{"KEY_PREFIX": "Bad"}, 1, "", `^apikey: configuration: KEY_PREFIX="Bad": .*\n$`},

		// Usage errors.
		{"create without owner", []string{"create", "--name", "x"}, nil, 2, "apikey: missing required flag --owner", ""},
		{"list without owner", []string{"list"}, nil, 2, "apikey: missing required flag --owner", ""},
		{"unknown command", []string{"frobnicate"}, nil, 2, `apikey: unknown command "frobnicate"`, ""},
		{"no command", nil, nil, 2, "apikey: no command given", ""},
		{"unknown flag", []string{"create", "--owner", "a", "--colour", "red"}, nil, 2, "apikey: flag provided but not defined: -colour", ""},
		{"flag without value", []string{"create", "--owner"}, nil, 2, "apikey: flag needs an argument: -owner", ""},
		{"missing ID", []string{"show", "--json"}, nil, 2, "apikey: missing ID", ""},
		{"two IDs", []string{"revoke", unknown, unknown}, nil, 2, "apikey: revoke takes 1 argument(s), got 2", ""},
		{"argument to create", []string{"create", "--owner", "a", "extra"}, nil, 2, "apikey: create takes 0 argument(s), got 1", ""},
		{"unknown help topic", []string{"help", "frobnicate"}, nil, 2, `apikey: unknown command "frobnicate"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &harness{t: t, env: maps(h.env, tt.env), clock: h.clock}
			r := h.run(tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			switch {
			case tt.match != "":
				if !regexp.MustCompile(tt.match).MatchString(r.stderr) {
					t.Errorf("stderr = %q, want a match for %q", r.stderr, tt.match)
				}
			case tt.code == 1:
				if r.stderr != tt.stderr {
					t.Errorf("stderr = %q\n          want %q", r.stderr, tt.stderr)
				}
			default:
				first, rest, _ := strings.Cut(r.stderr, "\n")
				if first != tt.stderr {
					t.Errorf("stderr first line = %q, want %q", first, tt.stderr)
				}
				if !strings.Contains(rest, "apikey ") {
					t.Errorf("stderr has no usage after the message:\n%s", r.stderr)
				}
			}
			if tt.code == 1 && strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
			checkNoSecret(t, "stderr", r.stderr, key)
		})
	}
}

// maps returns a merged copy of a and b; b wins.
func maps(a, b map[string]string) map[string]string {
	m := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func TestRotate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	old := h.createJSON("--owner", "acme", "--name", "prod", "--scopes", "bingo:check", "--expires", "720h")
	r := h.ok("rotate", old.ID, "--grace", "1h", "--json")
	var got struct {
		createdJSON
		Replaces keyJSON `json:"replaces"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("rotate --json printed %q: %v", r.stdout, err)
	}
	if keyformat.Parse(got.Key, "kg") != nil || keyformat.ID(got.Key) != got.ID || got.ID == old.ID {
		t.Errorf("new key = %+v", got.createdJSON)
	}
	if got.Owner != "acme" || got.Name != "prod" || !slices.Equal(got.Scopes, []string{"bingo:check"}) ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(*old.ExpiresAt) {
		t.Errorf("new key = %+v, want the old one's owner, name, scopes and expiry", got.KeyView)
	}
	stored := h.showJSON(old.ID)
	if stored.ExpiresAt == nil || stored.ExpiresAt.Sub(old.CreatedAt) > time.Hour+time.Minute || stored.ExpiresAt.Sub(old.CreatedAt) < time.Hour {
		t.Errorf("old key expires at %v, want about an hour after %v", stored.ExpiresAt, old.CreatedAt)
	}
	if got.Replaces.ID != old.ID || !got.Replaces.ExpiresAt.Equal(*stored.ExpiresAt) {
		t.Errorf("replaces = %+v", got.Replaces)
	}

	// Plain output: the key alone on stdout.
	plain := h.ok("rotate", got.ID)
	if keyformat.Parse(strings.TrimSpace(plain.stdout), "kg") != nil || !strings.Contains(plain.stderr, "Replaces key "+got.ID) {
		t.Errorf("rotate printed %q / %q", plain.stdout, plain.stderr)
	}
	checkNoSecret(t, "stderr", plain.stderr, strings.TrimSpace(plain.stdout))

	h.ok("revoke", old.ID)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"rotate", old.ID}, "apikey: key " + old.ID + " is revoked or expired: only an active key can be rotated\n"},
		{[]string{"rotate", got.ID, "--grace", "a day"}, "apikey: --grace \"a day\": want a Go duration from 0s to 720h, such as 24h\n"},
		{[]string{"rotate", keyformat.ID("none")}, "apikey: no key with ID " + keyformat.ID("none") + h.where() + "\n"},
	} {
		if r := h.run(c.args...); r.code != 1 || r.stderr != c.want {
			t.Errorf("apikey %v = %d %q, want 1 %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.createJSON("--owner", "acme", "--name", "a", "--rate", "5", "--burst", "10", "--quota", "1000")
	b := h.createJSON("--owner", "acme", "--name", "b")
	if a.RateLimit != 5 || a.Burst != 10 || a.MonthlyQuota != 1000 {
		t.Errorf("create limits = %+v", a)
	}
	fs := firestorestore.New(firestorestore.Config{Project: h.env["GOOGLE_CLOUD_PROJECT"], Database: "(default)", Collection: "api_keys"})
	defer fs.Close()
	if err := fs.AddUsage(t.Context(), "test", 1, []store.UsageCount{
		{KeyID: a.ID, Owner: "acme", Day: "2030-01-01", Requests: 5}, {KeyID: a.ID, Owner: "acme", Day: "2030-01-02", Requests: 7},
		{KeyID: b.ID, Owner: "acme", Day: "2030-01-02", Requests: 1}, {KeyID: a.ID, Owner: "acme", Day: "2029-12-31", Requests: 100},
	}); err != nil {
		t.Fatal(err)
	}
	var v view.UsageView
	r := h.ok("usage", a.ID, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	// The range runs to the present: the last seconds' counts may be in
	// flight, and stderr says so.
	if r.stderr != inFlight {
		t.Errorf("usage to today: stderr %q, want %q", r.stderr, inFlight)
	}
	// The clock starts on 2030-01-02: the default range is this month so far.
	if v.Month != "2030-01" || v.MonthTotal != 12 || v.MonthlyQuota == nil || *v.MonthlyQuota != 1000 ||
		len(v.Days) != 2 || v.Days[0].Requests != 5 || v.Days[1].Requests != 7 || v.From != "2030-01-01" {
		t.Errorf("usage --json = %+v", v)
	}
	r = h.ok("usage", a.ID, "--from", "2029-12-30", "--to", "2030-01-01")
	if r.stderr != "" {
		t.Errorf("usage to yesterday: stderr %q, want nothing: no count is in flight", r.stderr)
	}
	plain := r.stdout
	for _, want := range []string{"2029-12-31  100", "2030-01-01  5", "2030-01 total  12", "quota 1000"} {
		if !strings.Contains(strings.Join(strings.Fields(plain), "  "), strings.Join(strings.Fields(want), "  ")) {
			t.Errorf("usage output lacks %q:\n%s", want, plain)
		}
	}
	csv := h.ok("usage", "--owner", "acme", "--month", "2030-01", "--csv")
	for _, want := range []string{"key_id,hint,name,status,month,requests,monthly_quota\n",
		a.ID + "," + a.Hint + ",a,active,2030-01,12,1000\n", b.ID + "," + b.Hint + ",b,active,2030-01,1,\n"} {
		if !strings.Contains(csv.stdout, want) {
			t.Errorf("csv lacks %q:\n%s", want, csv.stdout)
		}
	}
	if !strings.HasSuffix(csv.stdout, "\ntotal,,,,2030-01,13,\n") || csv.stderr != inFlight {
		t.Errorf("csv does not end with the owner total 13, or has a note but the in-flight one:\n%s\nstderr: %s", csv.stdout, csv.stderr)
	}
	r = h.ok("usage", "--owner", "acme", "--month", "2029-12")
	if got := strings.Join(strings.Fields(r.stdout), " "); !strings.Contains(got, "total 2029-12 100 DAY ") || r.stderr != "" {
		t.Errorf("usage --owner's keys do not end with the owner total 100, or has a note (%q): %s", r.stderr, got)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"usage", a.ID, "--from", "2030-02-30"}, 1, "apikey: --from \"2030-02-30\": want a date YYYY-MM-DD\n"},
		{[]string{"usage", a.ID, "--from", "2029-01-01"}, 1, "apikey: --from 2029-01-01 --to 2030-01-02: want at most 92 days, from first\n"},
		{[]string{"usage", "--owner", "acme", "--month", "Jan"}, 1, "apikey: --month \"Jan\": want a month YYYY-MM\n"},
		{[]string{"usage"}, 2, ""},
		{[]string{"usage", a.ID, "--owner", "acme"}, 2, ""},
		{[]string{"usage", a.ID, "--days"}, 2, ""},
		{[]string{"usage", "--owner", "acme", "--month", "2030-01", "--json", "--csv"}, 2, ""},
		{[]string{"create", "--owner", "x", "--burst", "3"}, 1, "apikey: --burst needs --rate\n"},
		{[]string{"create", "--owner", "x", "--quota", "-1"}, 1, "apikey: --quota -1: want 0 (no quota) to 1000000000000 requests a month\n"},
	} {
		r := h.run(c.args...)
		if r.code != c.code || c.want != "" && r.stderr != c.want {
			t.Errorf("apikey %v = %d %q, want %d %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
}

// inFlight is the note of usage on a range that runs to the present.
const inFlight = "note: each instance stores its counts every USAGE_FLUSH_INTERVAL (10s): the requests of the last 10s may not show yet.\n"

// TestOwnerUsageTotal checks that usage --owner reads the owner's total from
// the owner's month document: a deleted key's requests stay in it, and
// requests written without an owner (by an older keygate) do not get into
// it, whatever the keys listed add up to.
func TestOwnerUsageTotal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.createJSON("--owner", "acme", "--name", "a")
	gone := h.createJSON("--owner", "acme", "--name", "gone")
	other := h.createJSON("--owner", "globex", "--name", "g")
	fs := firestorestore.New(firestorestore.Config{Project: h.env["GOOGLE_CLOUD_PROJECT"], Database: "(default)", Collection: "api_keys"})
	defer fs.Close()
	batches := [][]store.UsageCount{
		{{KeyID: a.ID, Owner: "acme", Day: "2030-01-01", Requests: 5}, {KeyID: gone.ID, Owner: "acme", Day: "2030-01-01", Requests: 30},
			{KeyID: other.ID, Owner: "globex", Day: "2030-01-01", Requests: 1000}},
		{{KeyID: a.ID, Day: "2030-01-02", Requests: 2}}, // no owner: an older meter
	}
	for i, b := range batches {
		if err := fs.AddUsage(t.Context(), "test", int64(i+1), b); err != nil {
			t.Fatal(err)
		}
	}
	h.ok("delete", gone.ID)

	r := h.ok("usage", "--owner", "acme", "--month", "2030-01", "--csv")
	want := "key_id,hint,name,status,month,requests,monthly_quota\n" +
		a.ID + "," + a.Hint + ",a,active,2030-01,7,\n" +
		"total,,,,2030-01,35,\n"
	if r.stdout != want {
		t.Errorf("usage --owner --csv =\n%s\nwant\n%s", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "note: the owner's total for 2030-01, 35, is not the sum of its keys listed, 7") {
		t.Errorf("stderr lacks the note: %q", r.stderr)
	}
	table := strings.Join(strings.Fields(h.ok("usage", "--owner", "acme", "--month", "2030-01").stdout), " ")
	if !strings.Contains(table, "total 2030-01 35 DAY ") {
		t.Errorf("usage --owner's keys do not end with the owner total 35: %s", table)
	}
	if r := h.ok("usage", "--owner", "globex", "--month", "2030-01", "--csv"); !strings.HasSuffix(r.stdout, "\ntotal,,,,2030-01,1000,\n") || r.stderr != inFlight {
		t.Errorf("globex: %q, stderr %q", r.stdout, r.stderr)
	}
	if r := h.ok("usage", "--owner", "nobody", "--month", "2030-01", "--csv"); r.stdout != "key_id,hint,name,status,month,requests,monthly_quota\ntotal,,,,2030-01,0,\n" {
		t.Errorf("an owner without keys: %q", r.stdout)
	}
}
