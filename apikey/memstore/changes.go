package memstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// maxChanges bounds the change log: it keeps the changes of the last
// store.ChangeRetention, and at most the latest 100,000 of them (about
// 10 MB), so that a process that writes without end does not grow without
// end. A reader whose cursor is older than the log gets
// store.ErrChangesExpired, and starts over.
const maxChanges = 100_000

// changeLog is the Store's change feed: the changes in the order they were
// made, each with a sequence number, 1 for the first. A cursor is the
// sequence number of the last change read, in decimal.
type changeLog struct {
	entries []loggedChange // oldest first, consecutive sequence numbers
	last    uint64         // the sequence number of the latest change
	dropped uint64         // the sequence number of the latest change dropped
}

type loggedChange struct {
	seq uint64
	store.Change
}

// logChange records a change; the caller holds s.mu, and makes the change
// under the same lock, so that the two are atomic.
func (s *Store) logChange(kind store.ChangeKind, id string) {
	l := &s.changes
	now := time.Now()
	l.last++
	l.entries = append(l.entries, loggedChange{l.last, store.Change{Kind: kind, ID: id, At: now}})
	n := 0
	for n < len(l.entries) && (len(l.entries)-n > maxChanges || now.Sub(l.entries[n].At) > store.ChangeRetention) {
		n++
	}
	if n > 0 {
		l.dropped = l.entries[n-1].seq
		l.entries = l.entries[n:]
		if len(l.entries) < cap(l.entries)/4 { // give the dropped ones' memory back
			l.entries = append([]loggedChange(nil), l.entries...)
		}
	}
}

// Changes implements store.ChangeStore.
func (s *Store) Changes(ctx context.Context, after store.ChangeCursor, limit int) ([]store.Change, store.ChangeCursor, error) {
	if err := ctx.Err(); err != nil {
		return nil, after, err
	}
	if limit < 1 {
		return nil, after, fmt.Errorf("memstore: changes: limit %d, want at least 1", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.changes
	if after == "" {
		return nil, cursorAt(l.last), nil
	}
	seq, err := strconv.ParseUint(string(after), 10, 64)
	if err != nil || seq > l.last {
		return nil, after, fmt.Errorf("memstore: changes: %q is not a cursor of this store", after)
	}
	if seq < l.dropped {
		return nil, after, store.ErrChangesExpired
	}
	var out []store.Change
	if len(l.entries) > 0 {
		i := int(seq + 1 - l.entries[0].seq) // entries[i] is the change after seq
		for _, e := range l.entries[i:min(len(l.entries), i+limit)] {
			out = append(out, e.Change)
			seq = e.seq
		}
	}
	return out, cursorAt(seq), nil
}

// cursorAt is the cursor after the change with sequence number seq.
func cursorAt(seq uint64) store.ChangeCursor {
	return store.ChangeCursor(strconv.FormatUint(seq, 10))
}
