package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/keygate/keygate/apikey/store"
)

// PubSub is a Publisher to a Pub/Sub topic. It calls the Publish RPC
// itself, one request per Publish, rather than the client's batching
// publisher: that one sends in the background and would make Close wait
// for a Pub/Sub that hangs. PUBSUB_EMULATOR_HOST is honoured (by the
// client). The client is created by the first Publish.
type PubSub struct {
	project, topic, source string

	mu     sync.Mutex
	client *pubsub.Client
}

// MaxBatch is the most events one Publish request carries (Pub/Sub's limit
// is 1,000 messages and 10 MB a request; an event is well under 2 KB).
const MaxBatch = 500

// ParseTopic returns the full name of topic, a topic ID in project or a
// full projects/P/topics/T.
func ParseTopic(project, topic string) (string, error) {
	if p, t, ok := strings.Cut(strings.TrimPrefix(topic, "projects/"), "/topics/"); ok && strings.HasPrefix(topic, "projects/") {
		if validID(p) && validTopicID(t) {
			return topic, nil
		}
		return "", errors.New("want projects/PROJECT/topics/TOPIC or a topic ID")
	}
	if !validTopicID(topic) {
		return "", errors.New("want a topic ID (3 to 255 letters, digits and - _ . ~ + %, starting with a letter, not goog) or projects/PROJECT/topics/TOPIC")
	}
	if project == "" {
		return "", errors.New("a topic ID needs the project (GOOGLE_CLOUD_PROJECT): or give projects/PROJECT/topics/TOPIC")
	}
	return "projects/" + project + "/topics/" + topic, nil
}

func validTopicID(t string) bool {
	if len(t) < 3 || len(t) > 255 || strings.HasPrefix(t, "goog") || !isLetter(t[0]) {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !isLetter(c) && !('0' <= c && c <= '9') && !strings.ContainsRune("-_.~+%", rune(c)) {
			return false
		}
	}
	return true
}

func validID(p string) bool { return p != "" && !strings.ContainsAny(p, "/ ") }

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// NewPubSub returns a publisher of the events of source to topic (see
// ParseTopic), in project's client.
func NewPubSub(project, topic, source string) (*PubSub, error) {
	name, err := ParseTopic(project, topic)
	if err != nil {
		return nil, fmt.Errorf("EVENTS_TOPIC=%q: %w", topic, err)
	}
	if project == "" {
		project, _, _ = strings.Cut(strings.TrimPrefix(name, "projects/"), "/")
	}
	return &PubSub{project: project, topic: name, source: source}, nil
}

// Topic returns the full name of the topic.
func (p *PubSub) Topic() string { return p.topic }

func (p *PubSub) clientOf(ctx context.Context) (*pubsub.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		c, err := pubsub.NewClient(ctx, p.project)
		if err != nil {
			return nil, fmt.Errorf("creating Pub/Sub client: %w", err)
		}
		p.client = c
	}
	return p.client, nil
}

// Publish implements Publisher: one Publish request per MaxBatch events.
func (p *PubSub) Publish(ctx context.Context, evs []store.Event) error {
	c, err := p.clientOf(ctx)
	if err != nil {
		return err
	}
	for len(evs) > 0 {
		n := min(len(evs), MaxBatch)
		req := &pubsubpb.PublishRequest{Topic: p.topic}
		for _, ev := range evs[:n] {
			req.Messages = append(req.Messages, &pubsubpb.PubsubMessage{Data: ev.Data, Attributes: Attributes(p.source, ev)})
		}
		if _, err := c.TopicAdminClient.Publish(ctx, req); err != nil {
			return fmt.Errorf("publishing %d events to %s: %w", n, p.topic, err)
		}
		evs = evs[n:]
	}
	return nil
}

// Close implements Publisher.
func (p *PubSub) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		return nil
	}
	err := p.client.Close()
	p.client = nil
	return err
}
