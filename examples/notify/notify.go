// Package notify is a consumer of keygate's events to copy: a CloudEvent
// function that posts a leaked key, a key about to expire and a quota
// threshold to a Slack-compatible incoming webhook, one short message each.
//
// It takes the events as Eventarc delivers a Pub/Sub topic's messages (a
// google.cloud.pubsub.topic.v1.messagePublished CloudEvent, keygate's event
// in its message), and as keygate's own CloudEvents in HTTP binary mode (a
// push subscription without a wrapper that writes the attributes as
// headers). It imports nothing of keygate: the event format is the contract
// (docs/events.md).
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"
)

func init() {
	functions.CloudEvent("Notify", Notify)
}

// pubsubPublished is the type of the CloudEvent Eventarc delivers for a
// message published to a Pub/Sub topic.
const pubsubPublished = "google.cloud.pubsub.topic.v1.messagePublished"

// webhookTimeout bounds each post to the webhook: a webhook that hangs is
// an error (retried), never a function that hangs.
const webhookTimeout = 10 * time.Second

// client and seen are kept across warm invocations.
var (
	client = &http.Client{Timeout: webhookTimeout}
	seen   = NewRecent(1000)
)

// Notify is the function: SLACK_WEBHOOK_URL names the webhook, read on each
// event so that a fixed variable needs no restart. It is a secret: it is
// never logged.
func Notify(ctx context.Context, e event.Event) error {
	n := Notifier{WebhookURL: os.Getenv("SLACK_WEBHOOK_URL"), Client: client, Seen: seen}
	return n.Handle(ctx, e)
}

// Notifier posts keygate's events to one incoming webhook.
type Notifier struct {
	WebhookURL string       // a secret: never logged
	Client     *http.Client // its Timeout bounds each post
	Seen       *Recent      // the ce-ids posted lately, or nil
}

// Handle posts e's message, if it has one. Its answer decides whether the
// event is delivered again: an error (HTTP 500) is retried by Pub/Sub with
// backoff, up to a dead-letter topic if the subscription has one; nil
// (HTTP 200) acknowledges it. So a webhook that is down, slow, unset or
// refusing the sender is an error, and an event that can never be posted
// (malformed, or refused by the webhook as malformed) is acknowledged with a
// log line: retrying it would only fail again, forever.
func (n Notifier) Handle(ctx context.Context, e event.Event) error {
	ev, err := unwrap(e)
	if err != nil {
		log.Printf("notify: event %.64q (%.64q) acknowledged, not posted: %v", e.ID(), e.Type(), err)
		return nil
	}
	text, err := ev.message()
	if err != nil {
		log.Printf("notify: event %.64q (%.64q) acknowledged, not posted: %v", ev.id, ev.typ, err)
		return nil
	}
	if text == "" {
		return nil // a type this function does not post
	}
	// At least once: a sweep may publish an event again, under the same
	// ce-id. An event posted lately on this instance is not posted twice.
	if n.Seen.Has(ev.id) {
		return nil
	}
	if err := n.post(ctx, text); err != nil {
		var refused errRefused
		if errors.As(err, &refused) && refused.permanent() {
			log.Printf("notify: event %.64q (%s) acknowledged, not posted: %v", ev.id, ev.typ, err)
			return nil
		}
		return fmt.Errorf("notify: event %.64q (%s) not posted, to be retried: %w", ev.id, ev.typ, err)
	}
	n.Seen.Add(ev.id)
	return nil
}

// errRefused is a webhook's answer other than 2xx.
type errRefused struct {
	status int
	body   string // the start of the answer: Slack says why in it
}

func (e errRefused) Error() string {
	return fmt.Sprintf("the webhook answered %d %q", e.status, e.body)
}

// permanent reports whether the same post would be refused again: 400
// (Slack's invalid_payload) and 413 are about the message itself. A 403,
// 404 or 410 is about the webhook (revoked, channel archived), which the
// operator fixes; retrying keeps the notice until then.
func (e errRefused) permanent() bool {
	return e.status == http.StatusBadRequest || e.status == http.StatusRequestEntityTooLarge
}

// post sends text to the webhook. Its errors never hold the URL.
func (n Notifier) post(ctx context.Context, text string) error {
	if n.WebhookURL == "" {
		return errors.New("SLACK_WEBHOOK_URL is not set")
	}
	body, err := json.Marshal(map[string]string{"text": text})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return errors.New("SLACK_WEBHOOK_URL is not a URL") // err would quote it
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.Client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // *url.Error quotes the URL
		}
		return fmt.Errorf("posting to the webhook: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode/100 != 2 {
		return errRefused{status: resp.StatusCode, body: string(answer)}
	}
	return nil
}

// keygateEvent is one of keygate's events, out of its envelope.
type keygateEvent struct {
	id, typ, subject string
	data             []byte
}

// unwrap returns keygate's event in e: the Pub/Sub message in an Eventarc
// event (its attributes are the ce- attributes, its data keygate's data), or
// e itself.
func unwrap(e event.Event) (keygateEvent, error) {
	if e.Type() != pubsubPublished {
		return keygateEvent{id: e.ID(), typ: e.Type(), subject: e.Subject(), data: e.Data()}, nil
	}
	var m struct {
		Message struct {
			Attributes map[string]string `json:"attributes"`
			Data       []byte            `json:"data"` // base64 in the JSON
		} `json:"message"`
	}
	if err := json.Unmarshal(e.Data(), &m); err != nil {
		return keygateEvent{}, fmt.Errorf("not a Pub/Sub message: %v", err)
	}
	a := m.Message.Attributes
	if a["ce-specversion"] != "1.0" || a["ce-id"] == "" || a["ce-type"] == "" {
		return keygateEvent{}, errors.New("the message is not a CloudEvent in binary mode (no ce-specversion 1.0, ce-id or ce-type attribute)")
	}
	return keygateEvent{id: a["ce-id"], typ: a["ce-type"], subject: a["ce-subject"], data: m.Message.Data}, nil
}

// The data of the events this function posts, as docs/events.md describes
// it; the fields it does not use are left out.
type (
	keyData struct {
		Key struct {
			ID        string     `json:"id"`
			Hint      string     `json:"hint"`
			Name      string     `json:"name"`
			Owner     string     `json:"owner"`
			ExpiresAt *time.Time `json:"expires_at"`
		} `json:"key"`
		URL     string `json:"url"`     // keygate.key.leaked
		Revoked bool   `json:"revoked"` // keygate.key.leaked
		Notice  string `json:"notice"`  // keygate.key.expiring
	}
	usageData struct {
		Owner   string `json:"owner"`
		KeyID   string `json:"key_id"`
		Month   string `json:"month"`
		Quota   int64  `json:"quota"`
		Used    int64  `json:"used"`
		Percent int    `json:"percent"`
	}
)

// message returns the text to post for ev, or "" for a type not posted.
func (ev keygateEvent) message() (string, error) {
	switch ev.typ {
	case "keygate.key.leaked", "keygate.key.expiring":
		var d keyData
		if err := json.Unmarshal(ev.data, &d); err != nil {
			return "", fmt.Errorf("data: %v", err)
		}
		if d.Key.ID == "" {
			return "", errors.New("data: no key.id")
		}
		key := fmt.Sprintf("Key %s (%s, %s) of %s", orID(d.Key.Name), d.Key.Hint, d.Key.ID, d.Key.Owner)
		if ev.typ == "keygate.key.leaked" {
			if d.Revoked {
				return escape(fmt.Sprintf(":rotating_light: %s was found in public at %s and revoked: its holder needs a new key.", key, d.URL)), nil
			}
			return escape(fmt.Sprintf(":rotating_light: %s was found in public at %s and is still valid: revoke it (apikey revoke %s).", key, d.URL, d.Key.ID)), nil
		}
		if d.Key.ExpiresAt == nil {
			return "", errors.New("data: no key.expires_at")
		}
		return escape(fmt.Sprintf(":hourglass: %s expires on %s (notice %s).", key, d.Key.ExpiresAt.UTC().Format("Mon 2 Jan 2006 15:04 MST"), d.Notice)), nil
	case "keygate.usage.threshold":
		var d usageData
		if err := json.Unmarshal(ev.data, &d); err != nil {
			return "", fmt.Errorf("data: %v", err)
		}
		if d.Owner == "" || d.Quota <= 0 || d.Month == "" {
			return "", errors.New("data: no owner, quota or month")
		}
		whose := d.Owner
		if d.KeyID != "" {
			whose = "Key " + d.KeyID + " of " + d.Owner
		}
		return escape(fmt.Sprintf(":chart_with_upwards_trend: %s has used %d%% of its monthly quota in %s: %d of %d requests.", whose, d.Percent, d.Month, d.Used, d.Quota)), nil
	}
	return "", nil
}

// orID names an unnamed key.
func orID(name string) string {
	if name == "" {
		return "(unnamed)"
	}
	return fmt.Sprintf("%q", name)
}

// escape escapes the three characters Slack reads as markup: a key named
// <!channel> notifies no one.
var escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// Recent is a bounded set of the ce-ids posted lately: the oldest leaves
// when a new one comes in at capacity.
type Recent struct {
	mu    sync.Mutex
	ids   map[string]bool
	order []string // a ring, next is the slot to reuse
	next  int
}

// NewRecent returns a set of at most n ids (at least 1).
func NewRecent(n int) *Recent {
	n = max(n, 1)
	return &Recent{ids: make(map[string]bool, n), order: make([]string, 0, n)}
}

// Has reports whether id was added lately; a nil Recent has none.
func (r *Recent) Has(id string) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id]
}

// Add adds id, dropping the oldest at capacity.
func (r *Recent) Add(id string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids[id] {
		return
	}
	if len(r.order) < cap(r.order) {
		r.order = append(r.order, id)
	} else {
		delete(r.ids, r.order[r.next])
		r.order[r.next] = id
		r.next = (r.next + 1) % len(r.order)
	}
	r.ids[id] = true
}
