package memstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// maxEvents bounds the outbox: past it, the oldest published events are
// dropped first, then the oldest unpublished ones (a memory store is for
// tests and demos; firestorestore keeps every unpublished event).
const maxEvents = 100_000

// outbox is the Store's recorded events and expiry notices.
type outbox struct {
	events  map[string]*memEvent
	notices map[string]string // key ID → the last expiry notice recorded
}

type memEvent struct {
	store.Event
	published bool
}

// record stores the event of fact, if ctx asks for one; the caller holds
// s.mu and makes the fact under the same lock.
func (s *Store) record(ctx context.Context, f store.Fact) {
	ev, ok := store.Record(ctx, f)
	if !ok {
		return
	}
	o := &s.outbox
	if o.events == nil {
		o.events = make(map[string]*memEvent)
	}
	o.events[ev.ID] = &memEvent{Event: ev}
	for len(o.events) > maxEvents {
		var oldest *memEvent
		for _, e := range o.events {
			if oldest == nil || e.published && !oldest.published ||
				e.published == oldest.published && e.Time.Before(oldest.Time) {
				oldest = e
			}
		}
		delete(o.events, oldest.ID)
	}
}

// GetEvent implements store.EventStore.
func (s *Store) GetEvent(ctx context.Context, id string) (store.Event, error) {
	if err := ctx.Err(); err != nil {
		return store.Event{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.outbox.events[id]
	if !ok {
		return store.Event{}, store.ErrEventNotFound
	}
	return e.Event, nil
}

// Unpublished implements store.EventStore.
func (s *Store) Unpublished(ctx context.Context, before time.Time, limit int) ([]store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	var out []store.Event
	for _, e := range s.outbox.events {
		if !e.published && !e.Time.After(before) {
			out = append(out, e.Event)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b store.Event) int { return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID)) })
	return out[:min(len(out), max(limit, 0))], nil
}

// MarkPublished implements store.EventStore.
func (s *Store) MarkPublished(ctx context.Context, ids []string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if e, ok := s.outbox.events[id]; ok {
			e.published = true
		}
	}
	return nil
}

// Expiring implements store.EventStore.
func (s *Store) Expiring(ctx context.Context, from, to time.Time, after string, limit int) ([]store.ExpiringKey, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	var in []store.ExpiringKey
	for _, k := range s.keys {
		if k.ExpiresAt.After(from) && !k.ExpiresAt.After(to) {
			in = append(in, store.ExpiringKey{Key: cloneKey(k), Notice: s.outbox.notices[k.ID]})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(in, func(a, b store.ExpiringKey) int {
		return cmp.Or(a.Key.ExpiresAt.Compare(b.Key.ExpiresAt), cmp.Compare(a.Key.ID, b.Key.ID))
	})
	if after != "" {
		// A key gone since: from the start, as a cursor lost.
		in = in[slices.IndexFunc(in, func(e store.ExpiringKey) bool { return e.Key.ID == after })+1:]
	}
	next := ""
	if len(in) > max(limit, 1) {
		in = in[:max(limit, 1)]
		next = in[len(in)-1].Key.ID
	}
	out := in[:0]
	for _, e := range in {
		if e.Key.RevokedAt.IsZero() && e.Key.ReplacedBy == "" {
			out = append(out, e)
		}
	}
	return out, next, nil
}

// NoteExpiry implements store.EventStore.
func (s *Store) NoteExpiry(ctx context.Context, id, notice string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok || !k.RevokedAt.IsZero() || store.NoticeRank(s.outbox.notices[id]) >= store.NoticeRank(notice) {
		return false, nil
	}
	if s.outbox.notices == nil {
		s.outbox.notices = make(map[string]string)
	}
	s.outbox.notices[id] = notice
	s.record(ctx, store.Fact{Kind: store.FactExpiring, Key: cloneKey(k), Notice: notice})
	return true, nil
}
