package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// These tests need no emulator: they use a fake store.

// fakeStore is a keyStore that records calls and answers every one with err.
type fakeStore struct {
	calls  []string
	err    error
	closed bool
}

func (s *fakeStore) Get(ctx context.Context, id string) (store.Key, error) {
	s.calls = append(s.calls, "Get")
	return store.Key{}, s.err
}

func (s *fakeStore) Create(ctx context.Context, k store.Key) error {
	s.calls = append(s.calls, "Create")
	return s.err
}

func (s *fakeStore) ListByOwner(ctx context.Context, owner string, after *store.PagePosition, limit int) (store.KeyPage, error) {
	s.calls = append(s.calls, "ListByOwner")
	return store.KeyPage{}, s.err
}

func (s *fakeStore) Revoke(ctx context.Context, id string, at time.Time) (store.Key, error) {
	s.calls = append(s.calls, "Revoke")
	return store.Key{}, s.err
}

func (s *fakeStore) Delete(ctx context.Context, id string) error {
	s.calls = append(s.calls, "Delete")
	return s.err
}

func (s *fakeStore) Rotate(ctx context.Context, id string, repl store.Key, graceEnd time.Time) (store.Key, error) {
	s.calls = append(s.calls, "Rotate")
	return store.Key{}, s.err
}

func (s *fakeStore) RotateCapped(ctx context.Context, id string, repl store.Key, graceEnd time.Time, maxActive int) (store.Key, error) {
	s.calls = append(s.calls, "RotateCapped")
	return store.Key{}, s.err
}

func (s *fakeStore) CreateCapped(ctx context.Context, k store.Key, maxActive int, now time.Time) error {
	s.calls = append(s.calls, "CreateCapped")
	return s.err
}

func (s *fakeStore) GetPlan(ctx context.Context, owner string) (store.Plan, error) {
	s.calls = append(s.calls, "GetPlan")
	return store.Plan{}, s.err
}

func (s *fakeStore) SetPlan(ctx context.Context, p store.Plan) error {
	s.calls = append(s.calls, "SetPlan")
	return s.err
}

func (s *fakeStore) DeletePlan(ctx context.Context, owner string) error {
	s.calls = append(s.calls, "DeletePlan")
	return s.err
}

func (s *fakeStore) Close() error { s.closed = true; return nil }

// runFake runs args on a fresh fakeStore failing with storeErr.
func runFake(t *testing.T, storeErr error, args ...string) (code int, stdout, stderr string, st *fakeStore) {
	t.Helper()
	st = &fakeStore{err: storeErr}
	var out, errb bytes.Buffer
	c := &cli{
		ctx:    t.Context(),
		stdout: &out,
		stderr: &errb,
		getenv: func(string) string { return "" },
		now:    func() time.Time { return start },
		open:   func(apikey.Config) keyStore { return st },
	}
	code = c.main(args)
	return code, out.String(), errb.String(), st
}

func TestStoreErrorIsOneLine(t *testing.T) {
	id := strings.Repeat("0", 64)
	storeErr := errors.New("firestore: get key: rpc error: code = Unavailable\n  desc = connection refused")
	for _, args := range [][]string{
		{"create", "--owner", "a"}, {"list", "--owner", "a"}, {"show", id}, {"revoke", id}, {"delete", id},
	} {
		code, stdout, stderr, st := runFake(t, storeErr, args...)
		want := "apikey: firestore: get key: rpc error: code = Unavailable desc = connection refused\n"
		if code != 1 || stderr != want || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1, nothing, %q", args, code, stdout, stderr, want)
		}
		if !st.closed {
			t.Errorf("%v: store not closed", args)
		}
	}
}

// TestStoreTimeout checks that STORE_TIMEOUT bounds each call on the store
// that run opens: against a server that accepts connections and never
// answers, a read (show) and a write (create) each fail after about
// STORE_TIMEOUT with one line, instead of hanging.
func TestStoreTimeout(t *testing.T) {
	addr := testkit.Mute(t)
	const timeout = 300 * time.Millisecond
	// The Firestore client finds the emulator in the process's
	// environment, not through getenv.
	t.Setenv("FIRESTORE_EMULATOR_HOST", addr)
	env := map[string]string{"FIRESTORE_EMULATOR_HOST": addr, "STORE_TIMEOUT": timeout.String()}
	for _, args := range [][]string{{"show", strings.Repeat("0", 64)}, {"create", "--owner", "a", "--force"}} {
		var stdout, stderr bytes.Buffer
		began := time.Now()
		code := run(t.Context(), args, &stdout, &stderr, environOf(env), time.Now)
		took := time.Since(began)
		if code != 1 || stdout.Len() != 0 || !regexp.MustCompile(`^apikey: no Firestore emulator answers at `+regexp.QuoteMeta(addr)+` \(FIRESTORE_EMULATOR_HOST\): .*(DeadlineExceeded|deadline exceeded).* \(project demo-keygate, database \(default\), emulator at `+regexp.QuoteMeta(addr)+`\)\n$`).MatchString(stderr.String()) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1 and one line naming the emulator address, the deadline and the project", args, code, stdout.String(), stderr.String())
		}
		if took < timeout || took > timeout+5*time.Second {
			t.Errorf("%v took %v, want about STORE_TIMEOUT, %v", args, took, timeout)
		}
	}
}

// TestValidationBeforeStore checks that bad values fail before any store
// call.
func TestValidationBeforeStore(t *testing.T) {
	for _, args := range [][]string{
		{"show", "nope"},
		{"revoke", strings.Repeat("A", 64)},
		{"delete", "kg_123"},
		{"create", "--owner", "a", "--scopes", "X:Y"},
		{"create", "--owner", "a", "--scopes", "x::y"},
		{"create", "--owner", "a", "--expires", "soon"},
		{"create", "--owner", strings.Repeat("o", 129)},
		{"list", "--owner", ""},
		{"create"},
		{"bogus"},
	} {
		code, _, _, st := runFake(t, nil, args...)
		if code == 0 || len(st.calls) != 0 {
			t.Errorf("%v: exit %d after store calls %v", args, code, st.calls)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, stdout, stderr, _ := runFake(t, nil, args...)
		if code != 0 || stderr != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
		for _, cmd := range commands {
			if !strings.Contains(stdout, "apikey "+cmd.name+" ") {
				t.Errorf("%v: usage lacks %s:\n%s", args, cmd.name, stdout)
			}
		}
		if !strings.Contains(stdout, "Exit status") || !strings.Contains(stdout, "FIRESTORE_EMULATOR_HOST") {
			t.Errorf("%v: usage lacks exit status or configuration:\n%s", args, stdout)
		}
	}
	for _, cmd := range commands {
		for _, args := range [][]string{{"help", cmd.name}, {cmd.name, "-h"}, {cmd.name, "--help"}} {
			code, stdout, stderr, st := runFake(t, nil, args...)
			if code != 0 || stderr != "" || len(st.calls) != 0 {
				t.Errorf("%v: exit %d, stderr %q, store calls %v", args, code, stderr, st.calls)
			}
			if !strings.HasPrefix(stdout, "Usage: apikey "+cmd.name+" "+cmd.args+"\n") {
				t.Errorf("%v: help starts %q", args, stdout)
			}
		}
	}
	_, stdout, _, _ := runFake(t, nil, "help", "create")
	for _, want := range []string{"--owner owner\n", "--scopes list\n", "--expires duration\n", "--json\n", "KEY=$(apikey create --owner acme)",
		"each words of a-z 0-9 _ - . joined by ':', at most 64 bytes, at most 32 scopes; none: the key stores none and gets the application's default scopes, KEY_DEFAULT_SCOPES (for the bingo function: bingo:check,usage:read)\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help create lacks %q:\n%s", want, stdout)
		}
	}
	// Scopes are the application's: the help gives their syntax and says
	// where the defaults come from, with the bingo function's.
	flat := strings.Join(strings.Fields(stdout), " ")
	for _, want := range []string{"Scopes belong to the application", "any scope names",
		"words of lowercase letters a-z, digits 0-9, '_', '-' and '.', each word starting with a letter or digit, joined by ':'; at most 64 bytes, and at most 32 scopes a key",
		"Without --scopes the key stores none, and the application grants it its default scopes, KEY_DEFAULT_SCOPES (for the bingo function: bingo:check,usage:read)",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("help create lacks %q:\n%s", want, stdout)
		}
	}
	if _, stdout, _, _ := runFake(t, nil, "help"); !strings.Contains(strings.Join(strings.Fields(stdout), " "), "KEY_DEFAULT_SCOPES (the scopes a key stored without any grants") {
		t.Errorf("usage does not explain KEY_DEFAULT_SCOPES:\n%s", stdout)
	}
}

func TestParseInterleaved(t *testing.T) {
	tests := []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"ID"}, []string{"ID"}, false},
		{[]string{"ID", "--json"}, []string{"ID"}, true},
		{[]string{"--json", "ID"}, []string{"ID"}, true},
		{[]string{"-json", "A", "B"}, []string{"A", "B"}, true},
		{[]string{"A", "--", "--json"}, []string{"A", "--json"}, false},
		{nil, nil, false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		j := fs.Bool("json", false, "")
		pos, err := parseInterleaved(fs, tt.args)
		if err != nil || !slices.Equal(pos, tt.pos) || *j != tt.json {
			t.Errorf("parseInterleaved(%q) = %q, json %v, %v; want %q, %v", tt.args, pos, *j, err, tt.pos, tt.json)
		}
	}
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", []string{}, ""},
		{"  ", []string{}, ""},
		{"bingo:check", []string{"bingo:check"}, ""},
		{" keys:manage ,\tusage:read ", []string{"keys:manage", "usage:read"}, ""},
		// Any well-formed name: scopes belong to the application.
		{"bingo:play,billing,things:read", []string{"bingo:play", "billing", "things:read"}, ""},
		{"1bingo:check,a.b-c_d:x:9", []string{"1bingo:check", "a.b-c_d:x:9"}, ""},
		{strings.Repeat("s", 64), []string{strings.Repeat("s", 64)}, ""},
		{"bingo:check,", nil, "empty item"},
		{"bingo:check,bingo:check", nil, "listed twice"},
		{"Bingo", nil, "is not a scope name"},
		{"bingo:", nil, "is not a scope name"},
		{":check", nil, "is not a scope name"},
		{"bingo::check", nil, "is not a scope name"},
		{"bingo:-check", nil, "is not a scope name"},
		{"bingo check", nil, "is not a scope name"},
		{"bingo:chéck", nil, "is not a scope name"},
		{strings.Repeat("s", 65), nil, "is not a scope name"},
		{strings.Repeat("s,", 32) + "t", nil, "33 scopes: want at most 32"},
	}
	for _, tt := range tests {
		got, err := parseScopes(tt.in)
		switch {
		case tt.err == "" && (err != nil || !slices.Equal(got, tt.want) || got == nil):
			t.Errorf("parseScopes(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseScopes(%q) error = %v, want one with %q", tt.in, err, tt.err)
		}
	}
}

func TestCheckText(t *testing.T) {
	tests := []struct {
		owner, name string
		ok          bool
	}{
		{"a", "", true},
		{strings.Repeat("界", 128), strings.Repeat("界", 100), true},
		{"", "", false},
		{strings.Repeat("a", 129), "", false},
		{"a", strings.Repeat("a", 101), false},
		{"a\x00", "", false},
		{"a", "b\n", false},
		{"a\u0085", "", false},    // C1 control
		{"a\xff", "", false},      // not UTF-8
		{"acme\u202e", "", false}, // RIGHT-TO-LEFT OVERRIDE
		{"a", "zero\u200bwidth", false},
		{"\ufeffacme", "", false}, // BOM
	}
	for _, tt := range tests {
		err := errors.Join(checkOwner(tt.owner), checkName(tt.name))
		if (err == nil) != tt.ok {
			t.Errorf("owner %q, name %q: %v, want ok %v", tt.owner, tt.name, err, tt.ok)
		}
	}
}

func TestOneLineRedactsKeys(t *testing.T) {
	key, err := keyformat.New("kg")
	if err != nil {
		t.Fatal(err)
	}
	got := oneLine("bad value \"" + key + "\"\nsecond  line")
	if want := `bad value "[redacted API key]" second line`; got != want {
		t.Errorf("oneLine = %q, want %q", got, want)
	}
	// A key pasted where a flag value belongs never comes back, not even
	// the part of it that the library's messages quote before cutting a
	// long value short.
	body := key[strings.IndexByte(key, '_')+1:]
	for _, args := range [][]string{
		{"create", "--owner", "a", "--scopes", key},
		{"create", "--owner", "a", "--scopes", "bingo:check, " + key},
		{"create", "--owner", "a", "--expires", key},
		{"rotate", strings.Repeat("0", 64), "--grace", key},
	} {
		code, _, stderr, _ := runFake(t, nil, args...)
		if code != 1 || !strings.Contains(stderr, "[redacted API key]") {
			t.Errorf("%.50q: exit %d, stderr %q; want 1, the key redacted", args, code, stderr)
		}
		for i := 0; i+8 <= len(body); i++ {
			if strings.Contains(stderr, body[i:i+8]) {
				t.Errorf("%.50q: stderr %q shows part of the key", args, stderr)
				break
			}
		}
	}
	if got, want := oneLine(`scope "my_Abcdefg"... is bad`), `scope "my_Abcdefg"... is bad`; got != want {
		t.Errorf("oneLine = %q, want a short word left alone: %q", got, want)
	}
}

// TestBadLimitsAndDurations checks that --rate, --burst, --quota, --expires
// and --grace are checked by the package's validators, with a message naming
// the flag, before any store call.
func TestBadLimitsAndDurations(t *testing.T) {
	id := strings.Repeat("0", 64)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--owner", "a", "--rate", "1e-300"}, "--rate 1e-300: want 0 (no limit) or 0.001 to 1000000 requests per second"},
		{[]string{"create", "--owner", "a", "--rate", "NaN"}, "--rate NaN: want"},
		{[]string{"create", "--owner", "a", "--rate", "+Inf"}, "--rate +Inf: want"},
		{[]string{"create", "--owner", "a", "--rate", "1", "--burst", "1000001"}, "--burst 1000001: want"},
		{[]string{"create", "--owner", "a", "--quota", "1000000000001"}, "--quota 1000000000001: want"},
		{[]string{"create", "--owner", "a", "--burst", "5"}, "--burst needs --rate"},
		{[]string{"create", "--owner", "a", "--expires", "1ns"}, `--expires "1ns": want a Go duration from 1s to 87600h`},
		{[]string{"create", "--owner", "a", "--expires", "87601h"}, `--expires "87601h": want`},
		{[]string{"create", "--owner", "a", "--expires", strings.Repeat("9", 5000)}, `--expires "9999`},
		{[]string{"rotate", id, "--grace", "721h"}, `--grace "721h": want a Go duration from 0s to 720h`},
		{[]string{"rotate", id, "--grace", "-1s"}, `--grace "-1s": want`},
		{[]string{"create", "--owner", "acme\u202e"}, "--owner contains the invisible format character U+202E"},
		{[]string{"create", "--owner", "a", "--name", "a\u200bb"}, "--name contains the invisible format character U+200B"},
		{[]string{"list", "--owner", "\u2066a"}, "--owner contains the invisible format character U+2066"},
	} {
		code, _, stderr, st := runFake(t, nil, c.args...)
		if code != 1 || len(st.calls) != 0 || !strings.HasPrefix(stderr, "apikey: "+c.want) || len(stderr) > 300 {
			t.Errorf("%.60q: exit %d, store calls %v, stderr %.300q; want %q", c.args, code, st.calls, stderr, c.want)
		}
	}
}

// TestCleanHidesFormatCharacters checks that a stored string is printed
// without its control and format characters.
func TestCleanHidesFormatCharacters(t *testing.T) {
	if got := clean("a\u202eb\u200bc\x1b[31m"); got != "a\ufffdb\ufffdc\ufffd[31m" {
		t.Errorf("clean = %q", got)
	}
}

// TestNoCredentials: with neither credentials nor FIRESTORE_EMULATOR_HOST,
// the CLI says how to get credentials or use the emulator, and where it
// looked, in one line.
func TestNoCredentials(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("CLOUDSDK_CONFIG", filepath.Join(home, "gcloud"))
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("FIRESTORE_EMULATOR_HOST", "")
	os.Unsetenv("FIRESTORE_EMULATOR_HOST")
	os.Unsetenv("GOOGLE_APPLICATION_CREDENTIALS")
	env := map[string]string{"GOOGLE_CLOUD_PROJECT": "some-project", "STORE_TIMEOUT": "5s"}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"list", "--owner", "acme"}, &stdout, &stderr, environOf(env), time.Now)
	want := "apikey: no Google credentials: run `gcloud auth application-default login`, or set FIRESTORE_EMULATOR_HOST to use the emulator (project some-project, database (default))\n"
	if code != 1 || stdout.Len() != 0 || stderr.String() != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing and %q", code, stdout.String(), stderr.String(), want)
	}
}

// TestConfigCheck: config check prints the configuration in effect, or
// fails naming the variable, without a store.
func TestConfigCheck(t *testing.T) {
	for _, c := range []struct {
		env         map[string]string
		code        int
		out, errOut string
	}{
		{map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "KEY_DEFAULT_SCOPES": "things:read"}, 0, "configuration ok: project p, database (default), collection api_keys, header X-API-Key, prefix kg, key cache 10000 for 1m0s (stale 10m0s, not found 30s), store timeout 2s, usage flush 10s, shutdown 8s, default scopes things:read, limits per instance, client address cloud-run\n", ""},
		{map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "REDIS_URL": "rediss://:s3cret@10.0.0.3:6378", "REDIS_TIMEOUT": "20ms"}, 0, "configuration ok: project p, database (default), collection api_keys, header X-API-Key, prefix kg, key cache 10000 for 1m0s (stale 10m0s, not found 30s), store timeout 2s, usage flush 10s, shutdown 8s, default scopes (the application's), limits global on Redis at 10.0.0.3:6378 with TLS (timeout 20ms), client address cloud-run\n", ""},
		{map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "CLIENT_ADDRESS": "load-balancer"}, 0, "configuration ok: project p, database (default), collection api_keys, header X-API-Key, prefix kg, key cache 10000 for 1m0s (stale 10m0s, not found 30s), store timeout 2s, usage flush 10s, shutdown 8s, default scopes (the application's), limits per instance, client address load-balancer\n", ""},
		{map[string]string{"CLIENT_ADDRESS": "xff"}, 1, "", "apikey: configuration: CLIENT_ADDRESS=\"xff\": want cloud-run, load-balancer or remote-addr\n"},
		{map[string]string{"REDIS_URL": "redis://:s3cret@10.0.0.3/x"}, 1, "", "apikey: configuration: REDIS_URL (not shown: it may hold a password): want redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or rediss://… for TLS\n"},
		{map[string]string{"KEY_CACHE_TTL": "abc"}, 1, "", "apikey: configuration: KEY_CACHE_TTL=\"abc\": want a Go duration of at least 1ms, such as 90s or 5m\n"},
		// A mistyped variable is named with the one meant, never its value,
		// even when the configuration is bad; one far from any is not.
		{map[string]string{"KEY_CACHE_TL": "5m-s3cret", "KEY_CACHE_TTL": "abc", "REDIS_HOST": "h"}, 1, "", "apikey: warning: KEY_CACHE_TL is set, but no variable of that name is read: did you mean KEY_CACHE_TTL?\n" +
			"apikey: configuration: KEY_CACHE_TTL=\"abc\": want a Go duration of at least 1ms, such as 90s or 5m\n"},
		{map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "KEY_DEFAULT_SCOPES": "things:raed,billing", "KEY_SCOPES": "things:read,things:write"}, 0,
			"configuration ok: project p, database (default), collection api_keys, header X-API-Key, prefix kg, key cache 10000 for 1m0s (stale 10m0s, not found 30s), store timeout 2s, usage flush 10s, shutdown 8s, default scopes things:raed,billing, limits per instance, client address cloud-run\n",
			"apikey: warning: KEY_DEFAULT_SCOPES names things:raed is not in KEY_SCOPES: did you mean things:read?\n" +
				"apikey: warning: KEY_DEFAULT_SCOPES names billing is not in KEY_SCOPES: it lists things:read,things:write\n"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"config", "check"}, &stdout, &stderr, environOf(c.env), time.Now)
		if code != c.code || stdout.String() != c.out || stderr.String() != c.errOut {
			t.Errorf("config check with %v = %d %q %q; want %d %q %q", c.env, code, stdout.String(), stderr.String(), c.code, c.out, c.errOut)
		}
	}
}

// TestCreateWarnsOfUnknownScopes: with KEY_SCOPES set, create warns on
// stderr of each scope it does not list, with the one it is near, and
// creates the key all the same; without KEY_SCOPES it says nothing.
func TestCreateWarnsOfUnknownScopes(t *testing.T) {
	for _, c := range []struct {
		known, scopes, warnings string
	}{
		{"bingo:check,usage:read,keys:manage", "bingo:chek,usage:read,billing",
			"apikey: warning: scope bingo:chek is not in KEY_SCOPES: did you mean bingo:check?\n" +
				"apikey: warning: scope billing is not in KEY_SCOPES: it lists bingo:check,usage:read,keys:manage\n"},
		{"bingo:check,usage:read", "bingo:check", ""},
		{"", "bingo:chek", ""},
	} {
		st := &fakeStore{}
		env := map[string]string{"KEY_SCOPES": c.known}
		var out, errb bytes.Buffer
		cl := &cli{ctx: t.Context(), stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] },
			now: func() time.Time { return start }, open: func(apikey.Config) keyStore { return st }}
		code := cl.main([]string{"create", "--owner", "acme", "--scopes", c.scopes})
		if code != 0 || !strings.HasPrefix(out.String(), "kg_") || !slices.Contains(st.calls, "CreateCapped") {
			t.Errorf("KEY_SCOPES=%s create --scopes %s: exit %d, stdout %q, calls %v; want the key created", c.known, c.scopes, code, out.String(), st.calls)
		}
		if got, _, _ := strings.Cut(errb.String(), "id: "); got != c.warnings {
			t.Errorf("KEY_SCOPES=%s create --scopes %s: stderr %q, want it to start with %q", c.known, c.scopes, errb.String(), c.warnings)
		}
	}
}
