package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/view"
)

// memCLI runs the CLI on st with the environment env.
func memCLI(t *testing.T, st keyStore, env map[string]string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{ctx: t.Context(), stdout: &out, stderr: &errb, getenv: func(n string) string { return env[n] },
		now: func() time.Time { return start }, open: func(apikey.Config) keyStore { return st }}
	if code := c.main(args); code != 0 {
		t.Fatalf("apikey %v = exit %d: %s", args, code, errb.String())
	}
	return out.String()
}

type closingMem struct{ *memstore.Store }

func (closingMem) Close() error { return nil }

// TestListLeaked: a key GitHub's secret scanning found in public is listed
// and shown as revoked because found in public, with the URL; --leaked
// lists only such keys.
func TestListLeaked(t *testing.T) {
	st := closingMem{memstore.New()}
	mint := func(name string) store.Key {
		_, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", Name: name, CreatedAt: start.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(t.Context(), k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	const url = "https://github.com/octo/demo/blob/abc/config.js"
	leaked, fine := mint("leaked"), mint("fine")
	if _, err := st.RecordLeak(t.Context(), leaked.ID, start.Add(-time.Minute), url); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revoke(t.Context(), leaked.ID, start.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	table := memCLI(t, st, nil, "list", "--owner", "acme")
	if !strings.Contains(table, "revoked: found in public at "+url) || !strings.Contains(table, fine.ID) {
		t.Errorf("list:\n%s\nwant the leaked key revoked: found in public at %s, and the other key", table, url)
	}
	only := memCLI(t, st, nil, "list", "--owner", "acme", "--leaked")
	if !strings.Contains(only, leaked.ID) || strings.Contains(only, fine.ID) {
		t.Errorf("list --leaked:\n%s\nwant only the leaked key", only)
	}
	var views []view.KeyView
	if err := json.Unmarshal([]byte(memCLI(t, st, nil, "list", "--owner", "acme", "--leaked", "--json")), &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 1 || views[0].LeakURL != url || views[0].LeakedAt == nil || views[0].Status != "revoked" {
		t.Errorf("list --leaked --json = %+v", views)
	}
	if show := memCLI(t, st, nil, "show", leaked.ID); !strings.Contains(show, "leaked:   "+formatTime(start.Add(-time.Minute))+" at "+url) {
		t.Errorf("show:\n%s\nwant a leaked line with the URL", show)
	}
	if none := memCLI(t, st, nil, "list", "--owner", "globex", "--leaked"); !strings.Contains(none, "No leaked keys") {
		t.Errorf("list --leaked of an owner without keys: %q", none)
	}
}

// TestSecretScanningPattern: the printed expression is the configured
// prefix's, and finds a key of it.
func TestSecretScanningPattern(t *testing.T) {
	for _, prefix := range []string{"", "acme"} {
		out := strings.TrimSpace(memCLI(t, nil, map[string]string{"KEY_PREFIX": prefix}, "secret-scanning", "pattern"))
		p := prefix
		if p == "" {
			p = "kg"
		}
		if out != keyformat.Pattern(p) {
			t.Errorf("KEY_PREFIX=%q: printed %s, want %s", prefix, out, keyformat.Pattern(p))
		}
		key, _ := keyformat.New(p)
		if !regexp.MustCompile(out).MatchString("token: " + key) {
			t.Errorf("%s does not find %s", out, key)
		}
	}
}
