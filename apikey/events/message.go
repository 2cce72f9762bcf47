package events

import (
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// SpecVersion is the CloudEvents version of every event.
const SpecVersion = "1.0"

// Attributes are ev's CloudEvents attributes in the Pub/Sub protocol
// binding, binary mode: each as a ce- message attribute, the data's
// content type as content-type; the message's data is ev.Data.
func Attributes(source string, ev store.Event) map[string]string {
	return map[string]string{
		"ce-specversion": SpecVersion,
		"ce-id":          ev.ID,
		"ce-source":      source,
		"ce-type":        ev.Type,
		"ce-time":        ev.Time.UTC().Format(time.RFC3339Nano),
		"ce-subject":     ev.Subject,
		"content-type":   "application/json",
	}
}
