package keygate

import (
	"encoding/json"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/readme"
)

// eventTypes are the event types, in the catalogue's order.
var eventTypes = []string{
	"keygate.key.created", "keygate.key.rotated", "keygate.key.revoked", "keygate.key.deleted",
	"keygate.key.leaked", "keygate.key.expiring", "keygate.usage.threshold", "keygate.plan.changed",
}

// docEvent is one example of docs/events.md's catalogue.
type docEvent struct {
	Attributes map[string]string `json:"attributes"`
	Data       json.RawMessage   `json:"data"`
}

// docEvents returns the catalogue's examples by type: one ```json block
// under each "### `TYPE`" heading.
func docEvents(t *testing.T) map[string]docEvent {
	t.Helper()
	var order []string
	events := map[string]docEvent{}
	parts := strings.Split(readme.Section(t, "docs/events.md", "Catalogue"), "\n### ")
	for _, part := range parts[1:] {
		heading, body, _ := strings.Cut(part, "\n")
		typ := strings.Trim(heading, "`")
		infos, blocks := readme.Fenced(body)
		if len(blocks) != 1 || infos[0] != "json" {
			t.Fatalf("docs/events.md: %s has %d blocks (%q), want one json block", heading, len(blocks), infos)
		}
		var ev docEvent
		dec := json.NewDecoder(strings.NewReader(blocks[0]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("docs/events.md: %s: %v", typ, err)
		}
		if _, dup := events[typ]; dup {
			t.Errorf("docs/events.md: %s shown twice", typ)
		}
		events[typ] = ev
		order = append(order, typ)
	}
	if !slices.Equal(order, eventTypes) {
		t.Errorf("docs/events.md's catalogue shows %q, want %q", order, eventTypes)
	}
	return events
}

// TestEventsDocCatalogue: docs/events.md shows one example of each type,
// with exactly the attributes of the format, and data that names keys by
// ID and hint only: no field that could hold a key.
func TestEventsDocCatalogue(t *testing.T) {
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	source := regexp.MustCompile(`^//keygate/projects/[^/]+/databases/[^/]+/collections/[^/]+$`)
	hint := regexp.MustCompile(`^[a-z0-9]{1,16}_[A-Za-z0-9]{4}…[A-Za-z0-9]{4}$`)
	keyID := regexp.MustCompile(`^[0-9a-f]{64}$`)
	ids := map[string]bool{}
	for typ, ev := range docEvents(t) {
		a := ev.Attributes
		if got, want := slices.Sorted(maps.Keys(a)), []string{"ce-id", "ce-source", "ce-specversion", "ce-subject", "ce-time", "ce-type", "content-type"}; !slices.Equal(got, want) {
			t.Errorf("%s: attributes %q, want %q", typ, got, want)
		}
		if _, err := time.Parse(time.RFC3339Nano, a["ce-time"]); err != nil || !strings.HasSuffix(a["ce-time"], "Z") {
			t.Errorf("%s: ce-time %q is not RFC 3339 in UTC: %v", typ, a["ce-time"], err)
		}
		if a["ce-type"] != typ || a["ce-specversion"] != "1.0" || a["content-type"] != "application/json" ||
			!hexID.MatchString(a["ce-id"]) || !source.MatchString(a["ce-source"]) || a["ce-subject"] == "" {
			t.Errorf("%s: attributes %q", typ, a)
		}
		if ids[a["ce-id"]] {
			t.Errorf("%s: ce-id %s is another example's", typ, a["ce-id"])
		}
		ids[a["ce-id"]] = true
		var data map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatalf("%s: data is not an object: %v", typ, err)
		}
		// Every key the data names: its ID, its hint, nothing else that
		// could be one.
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case map[string]any:
				if _, ok := v["hint"]; ok {
					if !keyID.MatchString(v["id"].(string)) || !hint.MatchString(v["hint"].(string)) {
						t.Errorf("%s: %s names a key by id %q, hint %q", typ, path, v["id"], v["hint"])
					}
				}
				for k, e := range v {
					if k == "key" && path != "" || k == "secret" || k == "api_key" {
						t.Errorf("%s: %s.%s: a field that could hold a key", typ, path, k)
					}
					walk(path+"."+k, e)
				}
			case []any:
				for _, e := range v {
					walk(path+"[]", e)
				}
			}
		}
		walk("", data)
	}
}

// TestEventsDocRecipesAcceptedByGcloud runs each gcloud command of
// docs/events.md's recipes with the installed gcloud and no credentials:
// stopping at the missing account (exit 1), not at argument parsing (exit
// 2), shows that the recipes' commands are ones gcloud accepts.
func TestEventsDocRecipesAcceptedByGcloud(t *testing.T) {
	deployRequireBash(t)
	if _, err := exec.LookPath("gcloud"); err != nil {
		t.Skip("gcloud not found on PATH")
	}
	env := deployEnv(t, map[string]string{
		// The recipes' project is gcloud's, as `gcloud config set project` sets it.
		"GOOGLE_CLOUD_PROJECT": "demo-keygate", "CLOUDSDK_CORE_PROJECT": "demo-keygate", "PROJECT_NUMBER": "123456789012",
		"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/not-a-secret",
	})
	_, blocks := readme.Fenced(readme.Section(t, "docs/events.md", "Recipes"))
	n := 0
	for _, block := range blocks {
		for _, line := range strings.Split(strings.ReplaceAll(block, "\\\n", ""), "\n") {
			if !strings.HasPrefix(line, "gcloud ") && !strings.Contains(line, "| gcloud ") {
				continue // cd, bq (its own parser), SQL
			}
			n++
			words := deployShellWords(t, line)
			command := deployCommand(t, words)
			t.Run(command, func(t *testing.T) { deployWantAccepted(t, env, command, "-c", line) })
		}
	}
	if n < 8 {
		t.Errorf("the recipes have %d gcloud commands, want at least 8", n)
	}
}
