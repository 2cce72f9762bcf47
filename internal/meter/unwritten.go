package meter

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/keygate/keygate/apikey/store"
)

// UnwrittenKey names the attribute of the ERROR log entries in which Close
// leaves the counts it could not write before its deadline: one entry per
// batch, {instance, seq, counts}. Cloud Logging keeps them; Replay writes
// them. An entry holds at most store.MaxUsageBatch counts, about 12 KB, well
// within Cloud Logging's 256 KB per entry.
const UnwrittenKey = "usage_unwritten"

// Unwritten is a usage batch that Close did not see stored: the batch in
// doubt under its own seq (its earlier attempts may have committed), and
// the counts never sent under the seqs after it.
type Unwritten struct {
	Instance string             `json:"instance"`
	Seq      int64              `json:"seq"`
	Counts   []store.UsageCount `json:"counts"`
	// Line is where ReadUnwritten found the entry: its first line in the file.
	Line int `json:"-"`
}

// logUnwritten logs, as ERROR entries, the batch in doubt and the counts not
// yet sent, in batches numbered after it, and drops them from the meter: the
// log is then their only record, written once by Replay. It counts the
// batches in m.unwritten.
//
// It waits for the turn without a deadline: its holder is a flush or a
// read whose store calls are bounded (store.WithTimeout), and logging
// counts that a flush may still write would count them twice.
func (m *Meter) logUnwritten() {
	m.turn <- struct{}{}
	defer m.releaseTurn()
	m.mu.Lock()
	m.harvestAll(m.now(), false)
	var batches []Unwritten
	if b := m.inDoubt; b != nil {
		batches = append(batches, Unwritten{Instance: m.instance, Seq: b.seq, Counts: b.counts})
		m.inDoubt = nil
	}
	var counts []store.UsageCount
	for k, n := range m.pending {
		counts = append(counts, store.UsageCount{KeyID: k.id, Owner: k.owner, Day: dayOfIndex(k.day), Requests: n})
	}
	clear(m.pending)
	for c := range slices.Chunk(counts, store.MaxUsageBatch) {
		m.batchSeq++
		batches = append(batches, Unwritten{Instance: m.instance, Seq: m.batchSeq, Counts: c})
	}
	m.unwritten.Add(int64(len(batches)))
	m.mu.Unlock()
	for _, b := range batches {
		// The message names the attribute too, so that a line cut short is
		// still recognised (ReadUnwritten).
		m.log.Error(UnwrittenKey+": usage not written before the shutdown deadline; replay it with apikey usage replay",
			slog.Any(UnwrittenKey, b))
	}
}

// ReadUnwritten reads the usage_unwritten entries in r and returns their
// batches, ordered by instance and seq, each once. r holds log entries as
// JSON: the array that `gcloud logging read --format=json` prints, or one
// entry per line, among other lines (cmd/local's output); an entry's
// payload is its jsonPayload, or the entry itself (the lines keygate writes
// to stdout). Entries without the attribute, and lines that are not JSON,
// are skipped, unless the line starts an object and names the attribute: a
// cut entry is an error, not a loss. So is a batch that is malformed, or that appears twice with
// different counts: nothing is replayed then.
func ReadUnwritten(r io.Reader) ([]Unwritten, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var entries []logEntry
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' {
		if entries, err = arrayEntries(data); err != nil {
			return nil, fmt.Errorf("not a JSON array of log entries: %w", err)
		}
	} else {
		for i, line := range bytes.Split(data, []byte("\n")) {
			line = bytes.TrimSpace(line)
			switch {
			case json.Valid(line):
				entries = append(entries, logEntry{line, i + 1})
			case bytes.HasPrefix(line, []byte("{")) && bytes.Contains(line, []byte(UnwrittenKey)):
				return nil, fmt.Errorf("line %d: an entry with %s that is not whole JSON", i+1, UnwrittenKey)
			}
		}
	}
	var out []Unwritten
	for _, le := range entries {
		e := le.raw
		var entry struct {
			JSONPayload *struct {
				Unwritten *Unwritten `json:"usage_unwritten"`
			} `json:"jsonPayload"`
			Unwritten *Unwritten `json:"usage_unwritten"`
		}
		if json.Unmarshal(e, &entry) != nil {
			continue // not an object: not ours
		}
		b := entry.Unwritten
		if entry.JSONPayload != nil && entry.JSONPayload.Unwritten != nil {
			b = entry.JSONPayload.Unwritten
		}
		if b == nil {
			continue
		}
		if err := b.validate(); err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", le.line, UnwrittenKey, err)
		}
		b.Line = le.line
		out = append(out, *b)
	}
	slices.SortStableFunc(out, func(a, b Unwritten) int {
		return cmp.Or(cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.Seq, b.Seq))
	})
	if err := checkDuplicates(out); err != nil {
		return nil, err
	}
	return slices.CompactFunc(out, func(a, b Unwritten) bool {
		return a.Instance == b.Instance && a.Seq == b.Seq
	}), nil
}

// logEntry is one log entry of a file, and the line it starts on.
type logEntry struct {
	raw  json.RawMessage
	line int
}

// arrayEntries are the elements of the JSON array data, each with its line.
func arrayEntries(data []byte) ([]logEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // [
		return nil, err
	}
	var out []logEntry
	for dec.More() {
		start := int(dec.InputOffset())
		for start < len(data) && (data[start] == ',' || isSpace(data[start])) {
			start++
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, logEntry{raw, 1 + bytes.Count(data[:start], []byte("\n"))})
	}
	if _, err := dec.Token(); err != nil { // ]
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the array")
	}
	return out, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// checkDuplicates refuses a batch logged twice with different counts: the
// log was edited, or two files of different instances were merged.
func checkDuplicates(sorted []Unwritten) error {
	for i := 1; i < len(sorted); i++ {
		a, b := sorted[i-1], sorted[i]
		if a.Instance == b.Instance && a.Seq == b.Seq && !slices.Equal(a.Counts, b.Counts) {
			return fmt.Errorf("lines %d and %d: instance %s batch %d appears twice with different counts", a.Line, b.Line, a.Instance, a.Seq)
		}
	}
	return nil
}

// validate checks b as the store will take it.
func (b *Unwritten) validate() error {
	switch {
	case b.Instance == "":
		return errors.New("no instance")
	case b.Seq < 1:
		return fmt.Errorf("instance %s: seq %d, want 1 or more", b.Instance, b.Seq)
	case len(b.Counts) == 0 || len(b.Counts) > store.MaxUsageBatch:
		return fmt.Errorf("instance %s batch %d: %d counts, want 1 to %d", b.Instance, b.Seq, len(b.Counts), store.MaxUsageBatch)
	}
	for _, c := range b.Counts {
		if _, err := store.ParseDay(string(c.Day)); err != nil || c.KeyID == "" || c.Requests < 1 {
			return fmt.Errorf("instance %s batch %d: count %+v: want a key_id, a day YYYY-MM-DD and requests of 1 or more", b.Instance, b.Seq, c)
		}
	}
	return nil
}

// Replay writes batches, as ReadUnwritten orders them, each under its own
// instance and seq: a batch the store holds already (written by an attempt
// whose answer was lost, or by an earlier replay) adds nothing, so replaying
// twice changes nothing. The store applies an instance's batches only in
// increasing seq, so all of an instance's entries are replayed together. It
// stops at the first error, which names the batch; replaying again resumes.
func Replay(ctx context.Context, st store.UsageStore, batches []Unwritten) error {
	for _, b := range batches {
		if err := st.AddUsage(ctx, b.Instance, b.Seq, b.Counts); err != nil {
			return fmt.Errorf("instance %s batch %d: %w", b.Instance, b.Seq, err)
		}
	}
	return nil
}
