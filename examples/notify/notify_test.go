package notify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

// The tests send events to the function as Eventarc and Pub/Sub do, over
// HTTP to the Functions Framework, which serves every function registered
// at its path: Notify at /Notify, and for the hanging webhook a Notifier
// with a short timeout at /hang.
var (
	base string        // the Functions Framework's address
	logs syncBuffer    // the function's log and the Framework's stderr
	hang = newHang()   // a webhook that never answers
	slow = time.Second // the /hang Notifier's timeout
)

func TestMain(m *testing.M) {
	log.SetOutput(&logs)
	stderr := os.Stderr
	r, w, err := os.Pipe() // the Framework prints a function's error to os.Stderr
	if err != nil {
		log.Fatal(err)
	}
	os.Stderr = w
	go io.Copy(&logs, r)
	hangNotifier := Notifier{WebhookURL: hang.URL + "/services/T0/B0/hangsecret", Client: &http.Client{Timeout: slow}}
	if err := funcframework.RegisterCloudEventFunctionContext(context.Background(), "/hang", hangNotifier.Handle); err != nil {
		log.Fatal(err)
	}
	os.Unsetenv("FUNCTION_TARGET")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	go func() { fmt.Fprintln(stderr, funcframework.StartHostPort("127.0.0.1", port)) }()
	base = "http://127.0.0.1:" + port
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(stderr, "the Functions Framework did not listen")
			os.Exit(1)
		}
	}
	code := m.Run()
	hang.Close()
	os.Stderr = stderr
	if strings.Contains(logs.String(), "secret") {
		fmt.Fprintf(stderr, "the logs hold the webhook URL:\n%s", logs.String())
		code = 1
	}
	os.Exit(code)
}

// logged waits, at most 10 s (the Framework's stderr reaches logs through a
// pipe), for the logs written since offset before to hold each of want, and
// returns them.
func logged(t *testing.T, before int, want ...string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l := logs.String()[before:]
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(l, w)
		}
		if !missing {
			return l
		}
		if time.Now().After(deadline) {
			t.Errorf("the logs %q do not say %q", l, want)
			return l
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newHang returns a webhook that holds each post until its client gives up
// (the server sees the connection close once it has read the body).
func newHang() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
}

// slack is a stand-in for an incoming webhook: it answers each post with
// the next status of statuses (200 when none is left) and keeps the texts
// it accepted.
type slack struct {
	mu       sync.Mutex
	statuses []int
	texts    []string
	bad      []string // what was wrong with a post
}

// newSlack starts a stand-in and points SLACK_WEBHOOK_URL at it, with a
// secret in its path as Slack's URLs have.
func newSlack(t *testing.T, statuses ...int) *slack {
	s := &slack{statuses: statuses}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Text string }
		err := json.NewDecoder(r.Body).Decode(&body)
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Method != "POST" || r.URL.Path != "/services/T0/B0/xoxsecret" || r.Header.Get("Content-Type") != "application/json" || err != nil {
			s.bad = append(s.bad, fmt.Sprintf("%s %s %s: %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err))
		}
		status := 200
		if len(s.statuses) > 0 {
			status, s.statuses = s.statuses[0], s.statuses[1:]
		}
		if status == 200 {
			s.texts = append(s.texts, body.Text)
		}
		w.WriteHeader(status)
		fmt.Fprint(w, map[int]string{200: "ok", 400: "invalid_payload", 404: "no_service", 429: "rate_limited", 500: "internal_error"}[status])
	}))
	t.Cleanup(srv.Close)
	t.Setenv("SLACK_WEBHOOK_URL", srv.URL+"/services/T0/B0/xoxsecret")
	return s
}

// posted returns the texts the stand-in accepted.
func (s *slack) posted(t *testing.T) []string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bad) > 0 {
		t.Errorf("bad posts to the webhook: %q", s.bad)
	}
	return s.texts
}

// message is one of keygate's events: its attributes and its data.
type message struct {
	attrs map[string]string
	data  string
}

// published returns an event of type typ with data, as keygate
// publishes it (docs/events.md).
func published(id, typ, data string) message {
	return message{attrs: map[string]string{
		"ce-specversion": "1.0", "ce-id": id, "ce-type": typ,
		"ce-source": "//keygate/projects/demo/databases/(default)/collections/api_keys",
		"ce-time":   "2026-12-07T20:00:00Z", "ce-subject": "acme",
		"content-type": "application/json",
	}, data: data}
}

// eventarc sends e to path as Eventarc delivers a Pub/Sub message: a
// messagePublished CloudEvent in HTTP binary mode, the message (attributes,
// base64 data) in its data. It returns the status.
func eventarc(t *testing.T, path string, e message, messageID string) int {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"message": map[string]any{
			"attributes": e.attrs, "data": base64.StdEncoding.EncodeToString([]byte(e.data)),
			"messageId": messageID, "publishTime": "2026-12-07T20:00:01.123Z",
		},
		"subscription": "projects/demo/subscriptions/eventarc-us-central1-notify-sub-000",
	})
	if err != nil {
		t.Fatal(err)
	}
	return send(t, path, map[string]string{
		"ce-specversion": "1.0", "ce-id": messageID, "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
		"ce-source": "//pubsub.googleapis.com/projects/demo/topics/keygate-events", "ce-time": "2026-12-07T20:00:01.123Z",
		"Content-Type": "application/json",
	}, body)
}

// binary sends e to /Notify as keygate's own CloudEvent in HTTP binary
// mode: what a push subscription without a wrapper, writing the message's
// attributes as headers, sends.
func binary(t *testing.T, e message) int {
	t.Helper()
	h := map[string]string{}
	for k, v := range e.attrs {
		h[k] = v
	}
	return send(t, "/Notify", h, []byte(e.data))
}

// send posts body with headers to the Functions Framework at path.
func send(t *testing.T, path string, headers map[string]string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

const (
	leakedRevoked = `{"key":{"id":"k1","hint":"kg_AbCd…wXyZ","name":"ci","owner":"acme","scopes":["bingo:check"],"created_at":"2026-11-01T10:00:00Z"},` +
		`"actor":{"type":"github_secret_scanning"},"url":"https://github.com/acme/app/blob/main/.env","revoked":true}`
	leakedFlagged = `{"key":{"id":"k2","hint":"kg_EfGh…sTuV","name":"","owner":"acme","scopes":[],"created_at":"2026-11-01T10:00:00Z"},` +
		`"actor":{"type":"github_secret_scanning"},"url":"https://gist.github.com/x/1","revoked":false}`
	expiring = `{"key":{"id":"k3","hint":"kg_IjKl…pQrS","name":"nightly","owner":"acme","scopes":["bingo:check"],"created_at":"2026-11-01T10:00:00Z",` +
		`"expires_at":"2026-12-14T09:30:00Z"},"actor":{"type":"sweep"},"notice":"7d"}`
	ownerThreshold = `{"owner":"acme","month":"2026-12","quota":100,"used":85,"percent":80}`
	keyThreshold   = `{"owner":"acme","key_id":"k4","month":"2026-12","quota":1000,"used":1000,"percent":100}`
	created        = `{"key":{"id":"k5","hint":"kg_MnOp…lMnO","name":"new","owner":"acme","scopes":[],"created_at":"2026-12-07T20:00:00Z"},"actor":{"type":"cli"}}`
)

// TestNotifyPosts: the three posted types, delivered by Eventarc or as a
// CloudEvent in binary mode, each post one message that names the key or
// owner; other types acknowledged and not posted.
func TestNotifyPosts(t *testing.T) {
	for _, tt := range []struct {
		name string
		e    message
		want string // the message posted, or "" for none
		asCE bool   // sent as keygate's CloudEvent, not through Eventarc
	}{
		{"leaked and revoked", published("e1", "keygate.key.leaked", leakedRevoked),
			`:rotating_light: Key "ci" (kg_AbCd…wXyZ, k1) of acme was found in public at https://github.com/acme/app/blob/main/.env and revoked: its holder needs a new key.`, false},
		{"leaked and flagged", published("e2", "keygate.key.leaked", leakedFlagged),
			`:rotating_light: Key (unnamed) (kg_EfGh…sTuV, k2) of acme was found in public at https://gist.github.com/x/1 and is still valid: revoke it (apikey revoke k2).`, false},
		{"expiring", published("e3", "keygate.key.expiring", expiring),
			`:hourglass: Key "nightly" (kg_IjKl…pQrS, k3) of acme expires on Mon 14 Dec 2026 09:30 UTC (notice 7d).`, false},
		{"owner's quota", published("e4", "keygate.usage.threshold", ownerThreshold),
			`:chart_with_upwards_trend: acme has used 80% of its monthly quota in 2026-12: 85 of 100 requests.`, false},
		{"key's quota", published("e5", "keygate.usage.threshold", keyThreshold),
			`:chart_with_upwards_trend: Key k4 of acme has used 100% of its monthly quota in 2026-12: 1000 of 1000 requests.`, false},
		{"leaked, binary mode", published("e6", "keygate.key.leaked", leakedRevoked),
			`:rotating_light: Key "ci" (kg_AbCd…wXyZ, k1) of acme was found in public at https://github.com/acme/app/blob/main/.env and revoked: its holder needs a new key.`, true},
		{"created: not posted", published("e7", "keygate.key.created", created), "", false},
		{"created, binary mode: not posted", published("e8", "keygate.key.created", created), "", true},
		{"another source's event: not posted", message{attrs: map[string]string{"ce-specversion": "1.0", "ce-id": "x", "ce-type": "com.example.other"}, data: "{}"}, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSlack(t)
			var status int
			if tt.asCE {
				status = binary(t, tt.e)
			} else {
				status = eventarc(t, "/Notify", tt.e, "m-"+tt.e.attrs["ce-id"])
			}
			if status != 200 {
				t.Errorf("status %d, want 200 (acknowledged)", status)
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if got := s.posted(t); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Errorf("posted %q\nwant   %q", got, want)
			}
		})
	}
}

// TestNotifyAcknowledgesMalformed: an event that can never be posted is
// acknowledged (200: Pub/Sub would retry anything else forever), not
// posted, and logged.
func TestNotifyAcknowledgesMalformed(t *testing.T) {
	noCE := published("m3", "keygate.key.leaked", leakedRevoked)
	delete(noCE.attrs, "ce-specversion")
	for _, tt := range []struct {
		name    string
		deliver func(t *testing.T) int
		log     string
	}{
		{"data not JSON", func(t *testing.T) int {
			return eventarc(t, "/Notify", published("m1", "keygate.key.leaked", "{not json"), "m-m1")
		}, "data: invalid character"},
		{"no key id", func(t *testing.T) int {
			return eventarc(t, "/Notify", published("m2", "keygate.key.leaked", `{"key":{"hint":"kg_AbCd…wXyZ"},"url":"https://x","revoked":true}`), "m-m2")
		}, "no key.id"},
		{"not a CloudEvent", func(t *testing.T) int { return eventarc(t, "/Notify", noCE, "m-m3") }, "not a CloudEvent in binary mode"},
		{"expiring without expires_at", func(t *testing.T) int {
			return eventarc(t, "/Notify", published("m4", "keygate.key.expiring", leakedRevoked), "m-m4")
		}, "no key.expires_at"},
		{"threshold without quota", func(t *testing.T) int {
			return eventarc(t, "/Notify", published("m5", "keygate.usage.threshold", `{"owner":"acme","month":"2026-12"}`), "m-m5")
		}, "no owner, quota or month"},
		{"not a Pub/Sub message", func(t *testing.T) int {
			return send(t, "/Notify", map[string]string{"ce-specversion": "1.0", "ce-id": "m6", "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
				"ce-source": "//pubsub.googleapis.com/projects/demo/topics/t", "Content-Type": "application/json"}, []byte(`{"message":{"data":"not base64!"}}`))
		}, "not a Pub/Sub message"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSlack(t)
			before := len(logs.String())
			if status := tt.deliver(t); status != 200 {
				t.Errorf("status %d, want 200 (acknowledged)", status)
			}
			if got := s.posted(t); len(got) != 0 {
				t.Errorf("posted %q, want nothing", got)
			}
			logged(t, before, "acknowledged, not posted", tt.log)
		})
	}
}

// TestNotifyRetries: a webhook that fails (5xx, 429, gone, unset) makes
// the function fail, so that Pub/Sub delivers the event again, and the
// next delivery posts it; one that calls the message itself bad (400) is
// acknowledged.
func TestNotifyRetries(t *testing.T) {
	for _, tt := range []struct {
		name     string
		statuses []int
		want     []int // the function's answers to two deliveries
		posts    int
	}{
		{"webhook error", []int{500}, []int{500, 200}, 1},
		{"rate limited", []int{429}, []int{500, 200}, 1},
		{"webhook gone, then fixed", []int{404}, []int{500, 200}, 1},
		{"message refused", []int{400}, []int{200, 200}, 1}, // the second delivery is posted: nothing marked it seen
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSlack(t, tt.statuses...)
			e := published("r-"+tt.name, "keygate.key.leaked", leakedRevoked)
			for i, want := range tt.want {
				if got := eventarc(t, "/Notify", e, fmt.Sprint("m", i)); got != want {
					t.Errorf("delivery %d: status %d, want %d", i+1, got, want)
				}
			}
			if got := s.posted(t); len(got) != tt.posts {
				t.Errorf("posted %d messages, want %d", len(got), tt.posts)
			}
		})
	}

	t.Run("webhook unset", func(t *testing.T) {
		t.Setenv("SLACK_WEBHOOK_URL", "")
		before := len(logs.String())
		if got := eventarc(t, "/Notify", published("u1", "keygate.key.leaked", leakedRevoked), "m-u1"); got != 500 {
			t.Errorf("status %d, want 500 (retried until the variable is set)", got)
		}
		logged(t, before, "SLACK_WEBHOOK_URL is not set")
	})

	t.Run("webhook down", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close() // nothing listens at its address now
		t.Setenv("SLACK_WEBHOOK_URL", srv.URL+"/services/T0/B0/downsecret")
		before := len(logs.String())
		if got := eventarc(t, "/Notify", published("d1", "keygate.key.leaked", leakedRevoked), "m-d1"); got != 500 {
			t.Errorf("status %d, want 500", got)
		}
		logged(t, before, "not posted, to be retried: posting to the webhook: dial tcp")
	})
}

// TestNotifyWebhookHangs: a webhook that never answers is an error after
// the client's timeout, not a function that hangs.
func TestNotifyWebhookHangs(t *testing.T) {
	start, before := time.Now(), len(logs.String())
	if got := eventarc(t, "/hang", published("h1", "keygate.key.leaked", leakedRevoked), "m-h1"); got != 500 {
		t.Errorf("status %d, want 500", got)
	}
	if d := time.Since(start); d < slow || d > slow+20*time.Second {
		t.Errorf("answered after %v, want the timeout, %v", d, slow)
	}
	logged(t, before, "not posted, to be retried: posting to the webhook: ")
}

// TestNotifyOncePerID: the same fact published twice (a sweep publishing
// again: a new message ID, the same ce-id) is posted once.
func TestNotifyOncePerID(t *testing.T) {
	s := newSlack(t)
	e := published("dup-1", "keygate.usage.threshold", ownerThreshold)
	for i := range 3 {
		if got := eventarc(t, "/Notify", e, fmt.Sprint("m-dup-", i)); got != 200 {
			t.Errorf("delivery %d: status %d", i+1, got)
		}
	}
	if got := s.posted(t); len(got) != 1 {
		t.Errorf("posted %d messages, want 1: %q", len(got), got)
	}
}

// TestNotifyEscapesMarkup: names come from key holders; Slack's markup in
// one is shown, not acted upon.
func TestNotifyEscapesMarkup(t *testing.T) {
	s := newSlack(t)
	data := strings.Replace(leakedRevoked, `"name":"ci"`, `"name":"<!channel> & <https://evil.example|click>"`, 1)
	if got := eventarc(t, "/Notify", published("x1", "keygate.key.leaked", data), "m-x1"); got != 200 {
		t.Fatalf("status %d", got)
	}
	got := s.posted(t)
	if len(got) != 1 || strings.ContainsAny(got[0], "<>") || !strings.Contains(got[0], `&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;`) {
		t.Errorf("posted %q, want the name escaped", got)
	}
}

// TestRecentBounded: the set of ce-ids keeps the last n.
func TestRecentBounded(t *testing.T) {
	r := NewRecent(3)
	for _, id := range []string{"a", "b", "c", "d", "d"} {
		r.Add(id)
	}
	for id, want := range map[string]bool{"a": false, "b": true, "c": true, "d": true} {
		if r.Has(id) != want {
			t.Errorf("Has(%q) = %v, want %v", id, !want, want)
		}
	}
	if len(r.ids) != 3 {
		t.Errorf("%d ids kept, want 3", len(r.ids))
	}
}

// TestNotifyDocumentedEvents: each example of keygate's event catalogue
// (docs/events.md, which keygate's tests check against the code), given as
// a JSON array in the file KEYGATE_EVENT_EXAMPLES (keygate's examples test
// writes it), is acknowledged; the three types posted are posted once, with
// the owner in the text.
func TestNotifyDocumentedEvents(t *testing.T) {
	path := os.Getenv("KEYGATE_EVENT_EXAMPLES")
	if path == "" {
		t.Skip("KEYGATE_EVENT_EXAMPLES is not set (keygate's examples test sets it)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var examples []struct {
		Attributes map[string]string `json:"attributes"`
		Data       json.RawMessage   `json:"data"`
	}
	if err := json.Unmarshal(b, &examples); err != nil {
		t.Fatal(err)
	}
	if len(examples) == 0 {
		t.Fatal("no examples")
	}
	for _, ex := range examples {
		typ := ex.Attributes["ce-type"]
		t.Run(typ, func(t *testing.T) {
			s := newSlack(t)
			if got := eventarc(t, "/Notify", message{attrs: ex.Attributes, data: string(ex.Data)}, "m-"+ex.Attributes["ce-id"]); got != 200 {
				t.Errorf("status %d, want 200", got)
			}
			posted := s.posted(t)
			switch typ {
			case "keygate.key.leaked", "keygate.key.expiring", "keygate.usage.threshold":
				if len(posted) != 1 || !strings.Contains(posted[0], ex.Attributes["ce-subject"]) {
					t.Errorf("posted %q, want one message naming %s", posted, ex.Attributes["ce-subject"])
				}
			default:
				if len(posted) != 0 {
					t.Errorf("posted %q, want nothing", posted)
				}
			}
		})
	}
}
