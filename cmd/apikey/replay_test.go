package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/firestorestore"
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

// TestUsageReplayRefusesForgeries replays a file that holds, beside a
// genuine entry of an instance that could not write, entries written by
// hand: alice's key billed to bob, 999,999,999,999 requests on a day a
// year ahead, a batch number of 9,000,000,000 for a live instance, a key
// that does not exist, a day before the key was made, a day after it was
// revoked, and more requests than an instance serves a key in a day. Each
// forged entry is refused with its line and reason and writes nothing; the
// genuine entry is written once, also when replayed again; --dry-run
// writes nothing; and the live instance's next batch is stored, not taken
// as applied.
func TestUsageReplayRefusesForgeries(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	alice := h.createJSON("--owner", "alice", "--name", "a")
	bob := h.createJSON("--owner", "bob", "--name", "b")
	gone := h.createJSON("--owner", "alice", "--name", "revoked")
	h.ok("revoke", gone.ID)
	cfg, err := apikey.LoadConfig(h.getenv)
	if err != nil {
		t.Fatal(err)
	}
	st := firestorestore.New(firestorestore.Config{Project: cfg.Project, Database: cfg.Database, Collection: cfg.Collection})
	defer st.Close()
	ctx := t.Context()
	now := h.clock.Now
	today := store.DayOf(now())

	// A live instance, which has written a batch.
	live := meter.New(meter.Options{Store: st, Interval: time.Hour, Idle: time.Hour, Now: now, Log: slog.New(slog.DiscardHandler)})
	admit := func(m *meter.Meter, id, owner string, n int) {
		t.Helper()
		for range n {
			if d, err := m.Admit(meter.Admission{KeyID: id, Owner: owner}, now()); err != nil || !d.Allowed {
				t.Fatal(d, err)
			}
			m.Done()
		}
	}
	admit(live, alice.ID, "alice", 10)
	if err := live.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	client, err := st.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	meters, err := client.Collection(cfg.Collection + "_meters").Documents(ctx).GetAll()
	if err != nil || len(meters) != 1 {
		t.Fatalf("meter documents %d, %v; want the live instance's", len(meters), err)
	}
	liveID := meters[0].Ref.ID

	// An instance whose store was down at its shutdown deadline.
	log, logs := testkit.Logger()
	down := meter.New(meter.Options{Store: downStore{}, Interval: time.Hour, Idle: time.Hour, Now: now, Log: log})
	admit(down, alice.ID, "alice", 150)
	admit(down, bob.ID, "bob", 50)
	closeCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := down.Close(closeCtx); err == nil {
		t.Fatal("Close with the store down succeeded")
	}
	genuine := strings.TrimSpace(logs.String())
	if n := strings.Count(genuine, meter.UnwrittenKey+`":`); n != 1 {
		t.Fatalf("%d %s entries logged, want 1:\n%s", n, meter.UnwrittenKey, genuine)
	}
	genuineLine := 1 + strings.Count(genuine[:strings.Index(genuine, meter.UnwrittenKey+`":`)], "\n")

	entry := func(instance string, seq int64, c store.UsageCount) string {
		b, _ := json.Marshal(map[string]any{"severity": "ERROR", "message": meter.UnwrittenKey + ": forged",
			meter.UnwrittenKey: meter.Unwritten{Instance: instance, Seq: seq, Counts: []store.UsageCount{c}}})
		return string(b)
	}
	created, err := store.ParseDay(alice.CreatedAt.Format(time.DateOnly))
	if err != nil {
		t.Fatal(err)
	}
	dayBefore := store.DayOf(alice.CreatedAt.AddDate(0, 0, -1))
	h.clock.Advance(72 * time.Hour) // days pass, after gone's revocation
	afterRevoked := store.DayOf(now().AddDate(0, 0, -1))
	forged := []struct {
		line string
		why  string
	}{
		{entry("forged-a", 1, store.UsageCount{KeyID: alice.ID, Owner: "bob", Day: today, Requests: 1_000_000}), "belongs to another owner"},
		{entry("forged-b", 1, store.UsageCount{KeyID: alice.ID, Owner: "alice", Day: store.DayOf(now().AddDate(1, 0, 0)), Requests: 999_999_999_999}), "a day in the future"},
		{entry(liveID, 9_000_000_000, store.UsageCount{KeyID: alice.ID, Owner: "alice", Day: today, Requests: 5}), "applied this instance's batches up to 1, and batch 2 is not in the file"},
		{entry("forged-c", 1, store.UsageCount{KeyID: strings.Repeat("ab", 32), Owner: "alice", Day: today, Requests: 1}), "no such key"},
		{entry("forged-d", 1, store.UsageCount{KeyID: alice.ID, Owner: "alice", Day: dayBefore, Requests: 1}), "before the key was created (" + string(created) + ")"},
		{entry("forged-e", 1, store.UsageCount{KeyID: gone.ID, Owner: "alice", Day: afterRevoked, Requests: 1}), "after the key was revoked"},
		{entry("forged-f", 1, store.UsageCount{KeyID: bob.ID, Owner: "bob", Day: today, Requests: meter.MaxReplayRequests + 1}), "more than 864000000 requests"},
	}
	lines := []string{genuine}
	for _, f := range forged {
		lines = append(lines, f.line)
	}
	file := filepath.Join(t.TempDir(), "mixed.log")
	os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	first := 1 + strings.Count(genuine, "\n") + 1 // the first forged entry's line

	month := today.Month()
	check := func(what string, wantAlice int64) {
		t.Helper()
		for _, c := range []struct {
			what string
			read func() (int64, error)
			want int64
		}{
			{"alice's key", func() (int64, error) { return st.MonthlyUsage(ctx, alice.ID, month) }, wantAlice},
			{"bob's key", func() (int64, error) { return st.MonthlyUsage(ctx, bob.ID, month) }, 50},
			{"owner alice", func() (int64, error) { return st.OwnerMonthlyUsage(ctx, "alice", month) }, wantAlice},
			{"owner bob", func() (int64, error) { return st.OwnerMonthlyUsage(ctx, "bob", month) }, 50},
			{"alice's key a year on", func() (int64, error) { return st.MonthlyUsage(ctx, alice.ID, store.MonthOf(now().AddDate(1, 0, 0))) }, 0},
			{"the revoked key", func() (int64, error) { return st.MonthlyUsage(ctx, gone.ID, afterRevoked.Month()) }, 0},
		} {
			if what == "before the replay" && c.want == 50 {
				c.want = 0
			}
			if n, err := c.read(); err != nil || n != c.want {
				t.Errorf("%s: %s month total %d, %v; want %d", what, c.what, n, err, c.want)
			}
		}
		if n, err := st.AppliedSeq(ctx, liveID); err != nil || n != 1 {
			t.Errorf("%s: the live instance's applied batch %d, %v; want 1", what, n, err)
		}
	}
	checkRefused := func(r result) {
		t.Helper()
		if r.code != 1 {
			t.Errorf("exit %d, want 1 (refusals)", r.code)
		}
		for i, f := range forged {
			want := fmt.Sprintf("refused: line %d: ", first+i)
			at := strings.Index(r.stderr, want)
			if at < 0 || !strings.Contains(r.stderr[at:at+strings.IndexByte(r.stderr[at:], '\n')], f.why) {
				t.Errorf("stderr has no %q with %q:\n%s", want, f.why, r.stderr)
			}
		}
	}

	dry := h.run("usage", "replay", "--dry-run", file)
	checkRefused(dry)
	if want := fmt.Sprintf("would write line %d: instance ", genuineLine); !strings.Contains(dry.stdout, want) ||
		!strings.Contains(dry.stdout, "dry run: would replay 1 batch of 1 instance, 200 requests in all; nothing written") {
		t.Errorf("dry run printed %q, want %q and the summary", dry.stdout, want)
	}
	check("before the replay", 10)

	r := h.run("usage", "replay", file)
	checkRefused(r)
	if !strings.Contains(r.stdout, "replayed 1 batch of 1 instance, 200 requests in all") {
		t.Errorf("replay printed %q", r.stdout)
	}
	check("after the replay", 160)
	r = h.run("usage", "replay", file)
	checkRefused(r)
	if !strings.Contains(r.stdout, "replayed 0 batches of 0 instances, 0 requests in all; 1 batch the store held already, not written again") {
		t.Errorf("the second replay printed %q", r.stdout)
	}
	check("after a second replay", 160)

	// The live instance's next batch is stored, not skipped.
	admit(live, alice.ID, "alice", 5)
	if err := live.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := st.MonthlyUsage(ctx, alice.ID, month); err != nil || n != 165 {
		t.Errorf("alice's key after the live instance's next batch: %d, %v; want 165", n, err)
	}
	if r := h.run("usage", "--dry-run", alice.ID); r.code != 2 || !strings.Contains(r.stderr, "--dry-run goes with replay FILE only") {
		t.Errorf("usage --dry-run ID: exit %d, stderr %q", r.code, r.stderr)
	}
}
