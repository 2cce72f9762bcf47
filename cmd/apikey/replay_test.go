package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/meter"
	"github.com/keygate/keygate/internal/testkit"
)

// downStore is a usage store that is down: its writes fail, so a meter's
// Close logs every count as usage_unwritten.
type downStore struct{ store.UsageStore }

func (downStore) AddUsage(context.Context, string, int64, []store.UsageCount) error {
	return testkit.ErrStoreDown
}

// TestUsageReplay replays what a meter logged when its store was down at
// the shutdown deadline, from the file that gcloud logging read writes and
// from the function's own lines: the emulator then holds every count once,
// and replaying again changes nothing.
func TestUsageReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.createJSON("--owner", "acme", "--name", "a")
	b := h.createJSON("--owner", "globex", "--name", "b")
	log, logs := testkit.Logger()
	now := func() time.Time { return h.clock.t }
	m := meter.New(meter.Options{Store: downStore{}, Interval: time.Hour, Idle: time.Hour, Now: now, Log: log})
	for _, c := range []struct {
		id, owner string
		n         int
	}{{a.ID, "acme", 150}, {b.ID, "globex", 50}} {
		for range c.n {
			if d, err := m.Admit(meter.Admission{KeyID: c.id, Owner: c.owner, OwnerQuota: 1000}, now()); err != nil || !d.Allowed {
				t.Fatal(d, err)
			}
			m.Done()
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := m.Close(ctx); err == nil {
		t.Fatal("Close with the store down succeeded")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "stdout.log")
	os.WriteFile(raw, []byte(logs.String()), 0o600)
	// gcloud logging read --format=json: an array of entries, the line as
	// jsonPayload.
	var entries []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		entries = append(entries, `{"jsonPayload":`+line+`,"severity":"ERROR","logName":"projects/p/logs/run.googleapis.com%2Fstdout"}`)
	}
	gcloud := filepath.Join(dir, "gcloud.json")
	os.WriteFile(gcloud, []byte("[\n"+strings.Join(entries, ",\n")+"\n]\n"), 0o600)

	month := store.MonthOf(h.clock.t)
	check := func(what string) {
		t.Helper()
		for _, c := range []struct {
			id   string
			want int64
		}{{a.ID, 150}, {b.ID, 50}} {
			var v struct {
				MonthTotal int64 `json:"month_total"`
			}
			json.Unmarshal([]byte(h.ok("usage", c.id, "--json").stdout), &v)
			if v.MonthTotal != c.want {
				t.Errorf("%s: key %s month %s total %d, want %d", what, c.id, month, v.MonthTotal, c.want)
			}
		}
	}
	r := h.ok("usage", "replay", gcloud)
	if !strings.Contains(r.stdout, "replayed 1 batch of 1 instance, 200 requests in all") {
		t.Errorf("replay printed %q", r.stdout)
	}
	check("after the replay")
	h.ok("usage", "replay", gcloud)
	h.ok("usage", "replay", raw)
	check("after two more replays")
	other := filepath.Join(dir, "other.log")
	os.WriteFile(other, []byte(`{"severity":"INFO","message":"hello"}`+"\n"), 0o600)
	if r := h.ok("usage", "replay", other); !strings.Contains(r.stdout, "nothing to replay") {
		t.Errorf("a file without entries: %+v", r)
	}

	cut := filepath.Join(dir, "cut.log")
	last := logs.String()[strings.LastIndex(logs.String(), `{"time"`):]
	os.WriteFile(cut, []byte(last[:len(last)/2]), 0o600)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"usage_unwritten":{"instance":"i","seq":1,"counts":[{"key_id":"k","day":"2030-13-01","requests":1}]}}`), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"usage", "replay", bad}, 1, "want a key_id, a day YYYY-MM-DD"},
		{[]string{"usage", "replay", cut}, 1, "line 1: an entry with usage_unwritten that is not whole JSON"},
		{[]string{"usage", "replay", filepath.Join(dir, "missing.json")}, 1, "no such file"},
		{[]string{"usage", "replay"}, 2, "usage replay takes a FILE"},
		{[]string{"usage", "replay", gcloud, "--json"}, 2, "usage replay takes a FILE"},
	} {
		r := h.run(c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("apikey %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.want)
		}
	}
	check("after the failed replays")
}
