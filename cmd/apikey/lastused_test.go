package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/store"
)

// TestLastUseAndReplacement: list and show print when a key was last used,
// as a usage flush recorded it, and show names the key that replaced one.
func TestLastUseAndReplacement(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.createJSON("--owner", "acme", "--name", "laptop")
	s := firestorestore.New(firestorestore.Config{Project: h.env["GOOGLE_CLOUD_PROJECT"]})
	defer s.Close()
	before := time.Now().UTC().Truncate(time.Second)
	if err := s.AddUsage(context.Background(), "test", 1, []store.UsageCount{{KeyID: c.ID, Owner: "acme", Day: store.DayOf(before), Requests: 3}}); err != nil {
		t.Fatal(err)
	}
	used := h.showJSON(c.ID).LastUsedAt
	if used == nil || used.Before(before) || used.After(time.Now()) {
		t.Fatalf("show --json: last_used_at = %v, want the time of the flush, after %v", used, before)
	}
	if r := h.ok("show", c.ID); !strings.Contains(r.stdout, "last use: "+used.Format(time.RFC3339)+"\n") {
		t.Errorf("show = %q, want its last use", r.stdout)
	}
	if r := h.ok("list", "--owner", "acme"); strings.Fields(strings.Split(r.stdout, "\n")[1])[6] != used.Format(time.RFC3339) {
		t.Errorf("list = %q, want the last use in LAST_USED", r.stdout)
	}
	r := h.ok("rotate", c.ID, "--json")
	var rotated createdJSON
	if err := json.Unmarshal([]byte(r.stdout), &rotated); err != nil {
		t.Fatalf("rotate --json printed %q: %v", r.stdout, err)
	}
	if got := h.showJSON(c.ID).ReplacedBy; got != rotated.ID {
		t.Errorf("show --json of the rotated key: replaced_by = %q, want %s", got, rotated.ID)
	}
	if r := h.ok("show", c.ID); !strings.Contains(r.stdout, "replaced: by "+rotated.ID+"\n") {
		t.Errorf("show of the rotated key = %q, want the key that replaced it", r.stdout)
	}
}
