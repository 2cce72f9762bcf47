package events_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/events"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/readme"
)

// TestDocsCatalogue: each example of docs/events.md's catalogue is what
// the code publishes for its fact: the fact, its writer, ID and time taken
// from the example, the event rendered and its attributes (Attributes)
// equal the example's, field for field.
func TestDocsCatalogue(t *testing.T) {
	types := map[string]store.FactKind{
		events.TypeKeyCreated: store.FactCreated, events.TypeKeyRotated: store.FactRotated,
		events.TypeKeyRevoked: store.FactRevoked, events.TypeKeyDeleted: store.FactDeleted,
		events.TypeKeyLeaked: store.FactLeaked, events.TypeKeyExpiring: store.FactExpiring,
		events.TypeUsageThreshold: store.FactThreshold, events.TypePlanChanged: store.FactPlan,
	}
	parts := strings.Split(readme.Section(t, "../../docs/events.md", "Catalogue"), "\n### ")
	if len(parts)-1 != len(types) {
		t.Errorf("docs/events.md shows %d types, want %d", len(parts)-1, len(types))
	}
	source := events.Source("my-project", "(default)", "api_keys")
	for _, part := range parts[1:] {
		heading, body, _ := strings.Cut(part, "\n")
		typ := strings.Trim(heading, "`")
		_, blocks := readme.Fenced(body)
		if len(blocks) != 1 {
			t.Fatalf("%s: %d blocks, want 1", typ, len(blocks))
		}
		var doc struct {
			Attributes map[string]string `json:"attributes"`
			Data       json.RawMessage   `json:"data"`
		}
		if err := json.Unmarshal([]byte(blocks[0]), &doc); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		// The fact and its writer, from the example's data.
		var d struct {
			Key, Replacement store.Key
			Actor            events.Actor
			Reason, URL      string
			Notice           string
			Revoked          bool
			Owner            string
			KeyID            string `json:"key_id"`
			Plan             *struct {
				RateLimit      float64 `json:"rate_limit"`
				Burst          int     `json:"burst"`
				MonthlyQuota   int64   `json:"monthly_quota"`
				MaxKeys        int     `json:"max_keys"`
				StripeCustomer string  `json:"stripe_customer"`
			}
			Month       store.Month
			Quota, Used int64
			Percent     int
		}
		if err := json.Unmarshal(doc.Data, &d); err != nil {
			t.Fatalf("%s: data: %v", typ, err)
		}
		kind, ok := types[typ]
		if !ok {
			t.Errorf("docs/events.md shows %s, not a type", typ)
			continue
		}
		d.Key.LeakURL = d.URL
		f := store.Fact{Kind: kind, Key: d.Key, Replacement: d.Replacement, Owner: d.Owner, Notice: d.Notice,
			Threshold: store.Threshold{Owner: d.Owner, KeyID: d.KeyID, Month: d.Month, Quota: d.Quota, Used: d.Used, Percent: d.Percent}}
		if d.Plan != nil {
			f.Plan = &store.Plan{Owner: d.Owner, RateLimit: d.Plan.RateLimit, Burst: d.Plan.Burst, MonthlyQuota: d.Plan.MonthlyQuota, MaxKeys: d.Plan.MaxKeys,
				StripeCustomer: d.Plan.StripeCustomer}
		}
		at, err := time.Parse(time.RFC3339Nano, doc.Attributes["ce-time"])
		if err != nil {
			t.Fatal(err)
		}
		w := events.Writer{Actor: d.Actor, Reason: d.Reason, LeakRevoked: d.Revoked, Now: func() time.Time { return at }}
		ev, _ := store.Record(store.WithOutbox(context.Background(), w.Outbox()), f)
		ev.ID = doc.Attributes["ce-id"] // random: the one thing taken as is
		if got := events.Attributes(source, ev); !reflect.DeepEqual(got, doc.Attributes) {
			t.Errorf("%s: the code's attributes\n%q\ndocs/events.md's\n%q", typ, got, doc.Attributes)
		}
		var got, want any
		json.Unmarshal(ev.Data, &got)
		json.Unmarshal(doc.Data, &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the code's data\n%s\ndocs/events.md's\n%s", typ, ev.Data, doc.Data)
		}
	}
}
