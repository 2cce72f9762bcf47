package apikey

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/events"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
)

// TestUsageThresholdOnEmulators: owner acme's quota is 100. After 85
// counted requests and a flush, one keygate.usage.threshold at 80 %; after
// 100, one at 100 %; further flushes, with requests refused, add none.
func TestUsageThresholdOnEmulators(t *testing.T) {
	ps := emulator.PubSub(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.Host)
	_, project := emulator.Project(t)
	sub := ps.Subscribe(t, project, "keygate-events")
	fs := firestorestore.New(firestorestore.Config{Project: project})
	t.Cleanup(func() { fs.Close() })
	if err := fs.SetPlan(t.Context(), store.Plan{Owner: "acme", MonthlyQuota: 100}); err != nil {
		t.Fatal(err)
	}
	s := newRealServer(t, fs, flushByHand, func(c *Config) { c.Project, c.EventsTopic = project, "keygate-events" })
	key, _ := s.mint(t, "acme")
	send := func(n, want int) {
		t.Helper()
		for range n {
			if w := s.do("GET", "/", "", key); w.Code != want {
				t.Fatalf("GET: %d, want %d", w.Code, want)
			}
		}
		if err := s.meter.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	thresholds := func() []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, m := range sub.Pull(t, 0, 2*time.Second) {
			var d map[string]any
			if m.Attributes["ce-type"] != events.TypeUsageThreshold || m.Attributes["ce-subject"] != "acme" || json.Unmarshal(m.Data, &d) != nil {
				t.Errorf("message %v %s", m.Attributes, m.Data)
			}
			out = append(out, d)
		}
		return out
	}
	month := string(store.MonthOf(time.Now()))
	send(85, 200)
	if got := thresholds(); len(got) != 1 || got[0]["percent"] != 80.0 || got[0]["used"] != 85.0 || got[0]["quota"] != 100.0 ||
		got[0]["owner"] != "acme" || got[0]["month"] != month || got[0]["key_id"] != nil {
		t.Errorf("after 85: %v, want one at 80 %%", got)
	}
	send(15, 200)
	if got := thresholds(); len(got) != 1 || got[0]["percent"] != 100.0 || got[0]["used"] != 100.0 {
		t.Errorf("after 100: %v, want one at 100 %%", got)
	}
	send(3, 429)
	send(0, 0)
	if got := thresholds(); len(got) != 0 {
		t.Errorf("further flushes: %v, want none", got)
	}
}
