package events

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// Publisher sends events somewhere. Publish returns nil only once every
// event is accepted; an error leaves them for the sweep, which sends them
// again under the same IDs. It must return by ctx's deadline. Close
// releases what it holds, without waiting for the network.
type Publisher interface {
	Publish(ctx context.Context, evs []store.Event) error
	Close() error
}

// Log is a Publisher that writes each event as one JSON line to w: for
// cmd/local without a topic, so that a newcomer sees them.
type Log struct {
	source string
	mu     sync.Mutex
	w      io.Writer
}

// NewLog returns a Log publisher of the events of source to w.
func NewLog(w io.Writer, source string) *Log { return &Log{source: source, w: w} }

// logLine is an event as Log writes it: the CloudEvents JSON format.
type logLine struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	Subject         string          `json:"subject"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// Publish implements Publisher.
func (l *Log) Publish(ctx context.Context, evs []store.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		b, err := json.Marshal(logLine{SpecVersion, ev.ID, l.source, ev.Type, ev.Time, ev.Subject, "application/json", ev.Data})
		if err != nil {
			return err
		}
		if _, err := l.w.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Publisher.
func (l *Log) Close() error { return nil }
