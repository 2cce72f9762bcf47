package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
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
		open:   func(keygate.Config) keyStore { return st },
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

// TestValidationBeforeStore checks that bad values fail before any store
// call.
func TestValidationBeforeStore(t *testing.T) {
	for _, args := range [][]string{
		{"show", "nope"},
		{"revoke", strings.Repeat("A", 64)},
		{"delete", "kg_123"},
		{"create", "--owner", "a", "--scopes", "x:y"},
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
	for _, want := range []string{"--owner owner\n", "--scopes list\n", "--expires duration\n", "--json\n", "bingo:check, usage:read, keys:manage", "KEY=$(apikey create --owner acme)", "default scopes bingo:check and usage:read"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help create lacks %q:\n%s", want, stdout)
		}
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
		{"bingo:check,", nil, "empty item"},
		{"bingo:check,bingo:check", nil, "listed twice"},
		{"bingo", nil, "malformed"},
		{"1bingo:check", nil, "malformed"},
		{"bingo:check:x", nil, "malformed"},
		{"bingo:play", nil, "unknown scope"},
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
	// A key pasted where a flag value belongs never comes back.
	code, _, stderr, _ := runFake(t, nil, "create", "--owner", "a", "--scopes", key)
	if code != 1 || strings.Contains(stderr, key) || !strings.Contains(stderr, "[redacted API key]") {
		t.Errorf("exit %d, stderr %q", code, stderr)
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
