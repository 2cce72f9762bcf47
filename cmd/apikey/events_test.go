package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/events"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/faultproxy"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/testkit/leak"
	"github.com/keygate/keygate/internal/view"
)

// Events on the Firestore and Pub/Sub emulators: every fact, written
// through the keys API, the CLI or a GitHub report, reaches a pull
// subscription once, within 2 s, as a CloudEvent in Pub/Sub's binary mode,
// and no message holds a key.

const eventsTopic = "keygate-events"

// eventsHarness is a harness with EVENTS_TOPIC on a Pub/Sub emulator of
// its own, a Gate serving the keys API and GitHub's reports on the same
// project, and a pull subscription of the topic.
type eventsHarness struct {
	*harness
	pubsub *emulator.PubSubServer
	sub    *emulator.Subscription
	api    http.Handler
	gh     *testkit.GitHub
	keys   map[string]string // every key made, by name, for the leak check
}

func newEventsHarness(t *testing.T, storeTimeout time.Duration) *eventsHarness {
	t.Helper()
	ps := emulator.PubSub(t)
	h := newHarness(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.Host)
	project := h.env["GOOGLE_CLOUD_PROJECT"]
	h.env["EVENTS_TOPIC"] = eventsTopic
	h.env["KEY_DEFAULT_SCOPES"] = "keys:manage"
	sub := ps.Subscribe(t, project, eventsTopic)
	gh := testkit.NewGitHub(t, "k1")
	cfg, err := apikey.LoadConfig(h.getenv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StoreTimeout, cfg.SecretScanningKeysURL = storeTimeout, gh.URL
	fs := firestorestore.New(firestorestore.Config{Project: project})
	g := apikey.New(cfg, fs, apikey.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	t.Cleanup(func() {
		g.Close(context.Background())
		fs.Close()
	})
	keys := g.KeysHandlers()
	mux := http.NewServeMux()
	mux.Handle("POST /v1/keys", g.Protect("keys:manage", keys.Create))
	mux.Handle("DELETE /v1/keys/{id}", g.Protect("keys:manage", keys.Revoke))
	mux.Handle("POST /v1/keys/{id}/rotate", g.Protect("keys:manage", keys.Rotate))
	outer := http.NewServeMux()
	outer.Handle("POST /v1/secret-scanning/github", g.GitHubSecretScanningHandler())
	outer.Handle("/", g.Authenticate(mux))
	return &eventsHarness{harness: h, pubsub: ps, sub: sub, api: outer, gh: gh, keys: map[string]string{}}
}

// call serves one request of the API with key.
func (h *eventsHarness) call(method, target, key, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	h.api.ServeHTTP(w, r)
	return w
}

// minted reads a created or rotated key from an answer and remembers it.
func (h *eventsHarness) minted(t *testing.T, name string, w *httptest.ResponseRecorder) view.NewKeyView {
	t.Helper()
	var k view.NewKeyView
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &k) != nil {
		t.Fatalf("%s: %d %s", name, w.Code, w.Body)
	}
	h.keys[name] = k.Key
	return k
}

// cliKey creates a key of acme with the CLI.
func (h *eventsHarness) cliKey(t *testing.T, name string) view.NewKeyView {
	t.Helper()
	k := h.createJSON("--owner", "acme", "--name", name)
	h.keys[name] = k.Key
	return k
}

// expect pulls the messages of one fact: exactly one, of type typ, within
// 2 s (and none more in the next 200 ms), and returns it decoded.
func (h *eventsHarness) expect(t *testing.T, fact, typ string, started time.Time) (map[string]string, map[string]any) {
	t.Helper()
	ms := h.sub.Pull(t, 1, 2*time.Second)
	arrived := time.Since(started)
	ms = append(ms, h.sub.Pull(t, 0, 200*time.Millisecond)...)
	if len(ms) != 1 {
		t.Fatalf("%s: %d messages within 2 s, want 1: %v", fact, len(ms), ms)
	}
	m := ms[0]
	t.Logf("%s: %s arrived %v after the write began", fact, typ, arrived.Round(time.Millisecond))
	h.checkMessage(t, fact, m, typ)
	var data map[string]any
	json.Unmarshal(m.Data, &data)
	return m.Attributes, data
}

// checkMessage checks a message's CloudEvents attributes, and that it
// holds no piece of a key.
func (h *eventsHarness) checkMessage(t *testing.T, fact string, m emulator.Message, typ string) {
	t.Helper()
	a := m.Attributes
	source := "//keygate/projects/" + h.env["GOOGLE_CLOUD_PROJECT"] + "/databases/(default)/collections/api_keys"
	if a["ce-specversion"] != "1.0" || a["ce-type"] != typ || a["ce-source"] != source || a["ce-subject"] != "acme" ||
		a["content-type"] != "application/json" || len(a["ce-id"]) != 32 {
		t.Errorf("%s: attributes %v", fact, a)
	}
	if _, err := time.Parse(time.RFC3339, a["ce-time"]); err != nil {
		t.Errorf("%s: ce-time %q: %v", fact, a["ce-time"], err)
	}
	if !json.Valid(m.Data) || !bytes.HasPrefix(m.Data, []byte("{")) {
		t.Errorf("%s: data %s is no JSON object", fact, m.Data)
	}
	all, _ := json.Marshal(m)
	if piece, name := leak.InN(string(all), h.keys, 8); piece != "" {
		t.Errorf("%s: the message holds %q of key %s: %s", fact, piece, name, all)
	}
}

func TestEventsOnEmulators(t *testing.T) {
	h := newEventsHarness(t, 30*time.Second)
	start := time.Now()
	admin := h.cliKey(t, "admin")
	_, data := h.expect(t, "created with the CLI", events.TypeKeyCreated, start)
	if k := data["key"].(map[string]any); k["id"] != admin.ID || k["hint"] != admin.Hint || data["actor"].(map[string]any)["type"] != "cli" {
		t.Errorf("created with the CLI: data %v", data)
	}

	start = time.Now()
	k1 := h.minted(t, "k1", h.call("POST", "/v1/keys", admin.Key, `{"name":"k1"}`))
	_, data = h.expect(t, "created through the API", events.TypeKeyCreated, start)
	if actor := data["actor"].(map[string]any); actor["type"] != "key" || actor["key_id"] != admin.ID {
		t.Errorf("created through the API: actor %v, want key %s", actor, admin.ID)
	}

	start = time.Now()
	k2 := h.minted(t, "k2", h.call("POST", "/v1/keys/"+k1.ID+"/rotate", admin.Key, `{"grace":"1h"}`))
	_, data = h.expect(t, "rotated through the API", events.TypeKeyRotated, start)
	if r := data["replacement"].(map[string]any); r["id"] != k2.ID || data["grace_ends_at"] == nil {
		t.Errorf("rotated: data %v", data)
	}

	start = time.Now()
	if w := h.call("DELETE", "/v1/keys/"+k2.ID, admin.Key, ""); w.Code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if _, data = h.expect(t, "revoked through the API", events.TypeKeyRevoked, start); data["reason"] != "api" {
		t.Errorf("revoked through the API: reason %v", data["reason"])
	}

	k3 := h.cliKey(t, "k3")
	h.expect(t, "created with the CLI", events.TypeKeyCreated, time.Now())
	start = time.Now()
	h.ok("revoke", k3.ID)
	if _, data = h.expect(t, "revoked with the CLI", events.TypeKeyRevoked, start); data["reason"] != "cli" {
		t.Errorf("revoked with the CLI: reason %v", data["reason"])
	}

	k4 := h.cliKey(t, "k4")
	h.expect(t, "created with the CLI", events.TypeKeyCreated, time.Now())
	body, _ := json.Marshal([]map[string]string{{"token": k4.Key, "type": "keygate_api_key", "url": "https://github.com/o/r/blob/x/a.js", "source": "commit"}})
	r := httptest.NewRequest("POST", "/v1/secret-scanning/github", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Github-Public-Key-Identifier", "k1")
	r.Header.Set("Github-Public-Key-Signature", h.gh.Sign(t, "k1", body))
	w := httptest.NewRecorder()
	start = time.Now()
	h.api.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("report: %d %s", w.Code, w.Body)
	}
	ms := h.sub.Pull(t, 2, 2*time.Second)
	ms = append(ms, h.sub.Pull(t, 0, 200*time.Millisecond)...)
	var types []string
	for _, m := range ms {
		types = append(types, m.Attributes["ce-type"])
		h.checkMessage(t, "reported by GitHub", m, m.Attributes["ce-type"])
		var d map[string]any
		json.Unmarshal(m.Data, &d)
		if d["actor"].(map[string]any)["type"] != "github_secret_scanning" ||
			m.Attributes["ce-type"] == events.TypeKeyLeaked && (d["url"] != "https://github.com/o/r/blob/x/a.js" || d["revoked"] != true) ||
			m.Attributes["ce-type"] == events.TypeKeyRevoked && d["reason"] != "leak" {
			t.Errorf("reported by GitHub: %s %s", m.Attributes["ce-type"], m.Data)
		}
	}
	slices.Sort(types)
	if !slices.Equal(types, []string{events.TypeKeyLeaked, events.TypeKeyRevoked}) {
		t.Errorf("reported by GitHub: %v within 2 s, want one leaked and one revoked", types)
	}

	start = time.Now()
	h.ok("plan", "set", "acme", "--quota", "100")
	_, data = h.expect(t, "plan set with the CLI", events.TypePlanChanged, start)
	if p := data["plan"].(map[string]any); p["monthly_quota"] != 100.0 || data["owner"] != "acme" {
		t.Errorf("plan set: data %v", data)
	}
	start = time.Now()
	h.ok("plan", "set", "acme", "--stripe-customer", "cus_NffrFeUfNV2Hib")
	_, data = h.expect(t, "Stripe customer linked with the CLI", events.TypePlanChanged, start)
	if p := data["plan"].(map[string]any); p["stripe_customer"] != "cus_NffrFeUfNV2Hib" || p["monthly_quota"] != 100.0 {
		t.Errorf("plan set --stripe-customer: data %v", data)
	}
}

// ceIDs returns the ce-ids of ms of type typ, and how many messages each.
func ceIDs(ms []emulator.Message, typ string) map[string]int {
	ids := map[string]int{}
	for _, m := range ms {
		if m.Attributes["ce-type"] == typ {
			ids[m.Attributes["ce-id"]]++
		}
	}
	return ids
}

// TestEventsPubSubFrozenOnEmulators: with Pub/Sub frozen (SIGSTOP), 20
// revokes through the API each answer within STORE_TIMEOUT + 1 s; after
// SIGCONT, one `apikey sweep` publishes the 20 events, under 20 distinct
// ce-ids, and a second sweep publishes none that is new.
func TestEventsPubSubFrozenOnEmulators(t *testing.T) {
	const n, storeTimeout = 20, 2 * time.Second
	h := newEventsHarness(t, storeTimeout)
	admin := h.cliKey(t, "admin")
	ids := map[string]bool{}
	for i := range n {
		ids[h.cliKey(t, "k"+string(rune('a'+i))).ID] = true
	}
	if ms := h.sub.Pull(t, n+1, 10*time.Second); len(ms) != n+1 {
		t.Fatalf("%d created events, want %d", len(ms), n+1)
	}
	h.pubsub.Freeze()
	var slowest time.Duration
	for id := range ids {
		began := time.Now()
		w := h.call("DELETE", "/v1/keys/"+id, admin.Key, "")
		took := time.Since(began)
		slowest = max(slowest, took)
		if w.Code != http.StatusNoContent || took > storeTimeout+time.Second {
			t.Errorf("revoke with Pub/Sub frozen: %d in %v, want 204 within %v", w.Code, took, storeTimeout+time.Second)
		}
	}
	t.Logf("with Pub/Sub frozen, the slowest of %d revokes answered in %v", n, slowest)
	h.pubsub.Thaw()
	r := h.ok("sweep", "--json")
	t.Logf("first sweep: %s", strings.TrimSpace(r.stdout))
	first := ceIDs(h.sub.Pull(t, 0, 5*time.Second), events.TypeKeyRevoked)
	if len(first) != n {
		t.Fatalf("after SIGCONT and a sweep, %d distinct revoked ce-ids, want %d: %v", len(first), n, first)
	}
	r = h.ok("sweep", "--json")
	t.Logf("second sweep: %s", strings.TrimSpace(r.stdout))
	for id := range ceIDs(h.sub.Pull(t, 0, 3*time.Second), events.TypeKeyRevoked) {
		if first[id] == 0 {
			t.Errorf("the second sweep published a new ce-id %s", id)
		}
	}
}

// TestExpiryNoticesOnEmulators: a key that expires in 3 days gets one
// keygate.key.expiring over three sweeps (the 7-day notice); with 12 hours
// left, exactly one more (the 1-day notice).
func TestExpiryNoticesOnEmulators(t *testing.T) {
	h := newEventsHarness(t, 30*time.Second)
	k := h.createJSON("--owner", "acme", "--expires", "72h")
	h.keys["k"] = k.Key
	h.sub.Pull(t, 1, 5*time.Second) // its created event
	notices := func(sweeps int) []string {
		t.Helper()
		for range sweeps {
			h.ok("sweep")
		}
		var got []string
		for _, m := range h.sub.Pull(t, 0, 2*time.Second) {
			h.checkMessage(t, "expiry notice", m, events.TypeKeyExpiring)
			var d map[string]any
			json.Unmarshal(m.Data, &d)
			if d["key"].(map[string]any)["id"] != k.ID || d["actor"].(map[string]any)["type"] != "sweep" {
				t.Errorf("notice %s", m.Data)
			}
			got = append(got, d["notice"].(string))
		}
		return got
	}
	if got := notices(3); !slices.Equal(got, []string{"7d"}) {
		t.Errorf("3 days before: notices %v over three sweeps, want [7d]", got)
	}
	h.clock.Advance(60 * time.Hour)
	if got := notices(2); !slices.Equal(got, []string{"1d"}) {
		t.Errorf("12 hours before: notices %v over two sweeps, want [1d]", got)
	}
}

// TestEventsLostPublishAnswerOnEmulators: Pub/Sub applies a revoke's
// publish and its answer is lost (a proxy in front of the emulator), every
// time until the publish's deadline: the revoke answers all the same, the
// event stays unpublished, and the sweep sends it again under the same
// ce-id; a second sweep sends nothing.
func TestEventsLostPublishAnswerOnEmulators(t *testing.T) {
	const storeTimeout = 2 * time.Second
	h := newEventsHarness(t, storeTimeout)
	p, err := faultproxy.Start(h.pubsub.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", p.Addr()) // before the Gate's first publish
	admin := h.cliKey(t, "admin")
	k := h.cliKey(t, "k")
	h.sub.Pull(t, 2, 5*time.Second)
	p.LoseAnswers(faultproxy.PublishMethod, 0, 0)
	began := time.Now()
	if w := h.call("DELETE", "/v1/keys/"+k.ID, admin.Key, ""); w.Code != http.StatusNoContent || time.Since(began) > storeTimeout+time.Second {
		t.Fatalf("revoke with publish answers lost: %d in %v", w.Code, time.Since(began))
	}
	p.Set(faultproxy.Up)
	r := h.ok("sweep", "--json")
	if !strings.Contains(r.stdout, `"published":1`) {
		t.Errorf("sweep after lost answers: %s, want the event published again", r.stdout)
	}
	ms := h.sub.Pull(t, 0, 3*time.Second)
	ids := ceIDs(ms, events.TypeKeyRevoked)
	t.Logf("the revocation arrived %d times, under ce-ids %v", len(ms), ids)
	if len(ids) != 1 || len(ms) < 2 {
		t.Errorf("%d messages under ce-ids %v: want the lost ones and the sweep's, under one ce-id", len(ms), ids)
	}
	if r := h.ok("sweep", "--json"); !strings.Contains(r.stdout, `"published":0`) {
		t.Errorf("second sweep: %s, want nothing published", r.stdout)
	}
}
