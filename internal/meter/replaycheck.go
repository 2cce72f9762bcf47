package meter

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/apikey/store"
)

// MaxReplayRequests bounds the requests of one key on one day that a replay
// takes from one instance: 10,000 a second for the whole day. The meter
// logs at most what it admitted; a count above it was written by hand.
const MaxReplayRequests = 10_000 * 24 * 60 * 60

// ReplaySource is what CheckReplay reads: the keys the counts name, and the
// batches the store applied of each instance.
type ReplaySource interface {
	GetMany(ctx context.Context, ids []string) ([]store.Key, error)
	store.AppliedReader
}

// ReplayPlan is what a replay of a file may write.
type ReplayPlan struct {
	// Write are the batches to write, each with its accepted counts, in
	// the order Replay takes them.
	Write []Unwritten
	// Held are the batches the store applied already: writing them adds
	// nothing, so they are not written.
	Held []Unwritten
	// Refused are the counts and batches not written, with why.
	Refused []Refusal
}

// Refusal is a count (or a whole batch, Count nil) a replay does not write.
type Refusal struct {
	Line     int // the entry's first line in the file
	Instance string
	Seq      int64
	Count    *store.UsageCount
	Reason   string
}

func (r Refusal) String() string {
	s := fmt.Sprintf("line %d: instance %s batch %d", r.Line, r.Instance, r.Seq)
	if r.Count != nil {
		s += fmt.Sprintf(": key %s, day %s, requests %d", r.Count.KeyID, r.Count.Day, r.Count.Requests)
	}
	return s + ": " + r.Reason
}

// CheckReplay decides what of batches (as ReadUnwritten returns them) a
// replay may write at now, trusting nothing in them but what the store
// confirms:
//   - a count's key exists and belongs to the owner the count names;
//   - its day is neither before the key was created, nor after it was
//     revoked or expired (plus slack: how long an instance's cache may serve
//     a key after), nor after now;
//   - an instance's requests of a key on a day are at most MaxReplayRequests;
//   - an instance's batches above the last one the store applied follow it
//     without a gap: a batch numbered past one missing from the file (a
//     forged number, which would make the store skip the instance's real
//     batches up to it) is refused whole.
//
// A batch the store holds already is Held, its counts checked all the same.
// The error is the store's: nothing is to be written then.
func CheckReplay(ctx context.Context, src ReplaySource, batches []Unwritten, now time.Time, slack time.Duration) (ReplayPlan, error) {
	keys, err := replayKeys(ctx, src, batches)
	if err != nil {
		return ReplayPlan{}, err
	}
	type keyDay struct {
		instance, key string
		day           store.Day
	}
	var (
		plan    ReplayPlan
		applied = map[string]int64{} // the instance's last batch applied, or checked to follow it
		sums    = map[keyDay]int64{}
	)
	for _, b := range batches {
		last, ok := applied[b.Instance]
		if !ok {
			if last, err = src.AppliedSeq(ctx, b.Instance); err != nil {
				return ReplayPlan{}, fmt.Errorf("instance %s: %w", b.Instance, err)
			}
			applied[b.Instance] = last
		}
		held := b.Seq <= last
		if !held && b.Seq != last+1 {
			plan.Refused = append(plan.Refused, Refusal{Line: b.Line, Instance: b.Instance, Seq: b.Seq,
				Reason: fmt.Sprintf("the store applied this instance's batches up to %d, and batch %d is not in the file: a batch number past a gap is not one the instance logged", last, last+1)})
			continue
		}
		if !held {
			applied[b.Instance] = b.Seq
		}
		keep := Unwritten{Instance: b.Instance, Seq: b.Seq, Line: b.Line}
		for _, c := range b.Counts {
			why := countRefused(c, keys, now, slack)
			if why == "" {
				kd := keyDay{b.Instance, c.KeyID, c.Day}
				if sums[kd]+c.Requests > MaxReplayRequests {
					why = fmt.Sprintf("more than %d requests of the key on the day from one instance (10,000 a second all day)", MaxReplayRequests)
				} else {
					sums[kd] += c.Requests
				}
			}
			if why != "" {
				plan.Refused = append(plan.Refused, Refusal{Line: b.Line, Instance: b.Instance, Seq: b.Seq, Count: &c, Reason: why})
				continue
			}
			keep.Counts = append(keep.Counts, c)
		}
		switch {
		case held:
			plan.Held = append(plan.Held, keep)
		case len(keep.Counts) > 0:
			plan.Write = append(plan.Write, keep)
		}
	}
	return plan, nil
}

// countRefused is why c is not to be written, or "".
func countRefused(c store.UsageCount, keys map[string]store.Key, now time.Time, slack time.Duration) string {
	k, ok := keys[c.KeyID]
	switch {
	case !ok:
		return "no such key (never made, or deleted)"
	case c.Owner != k.Owner:
		return fmt.Sprintf("the key belongs to another owner than %q", c.Owner)
	case c.Day < store.DayOf(k.CreatedAt):
		return "a day before the key was created (" + string(store.DayOf(k.CreatedAt)) + ")"
	case c.Day > store.DayOf(now):
		return "a day in the future"
	}
	for _, end := range []struct {
		at   time.Time
		what string
	}{{k.RevokedAt, "was revoked"}, {k.ExpiresAt, "expired"}} {
		if !end.at.IsZero() && c.Day > store.DayOf(end.at.Add(slack)) {
			return fmt.Sprintf("a day after the key %s (%s)", end.what, end.at.UTC().Format(time.RFC3339))
		}
	}
	return ""
}

// replayKeys reads the keys the counts of batches name, store.MaxGetMany at
// a time.
func replayKeys(ctx context.Context, src ReplaySource, batches []Unwritten) (map[string]store.Key, error) {
	seen := map[string]bool{}
	var ids []string
	for _, b := range batches {
		for _, c := range b.Counts {
			if !seen[c.KeyID] {
				seen[c.KeyID] = true
				ids = append(ids, c.KeyID)
			}
		}
	}
	keys := make(map[string]store.Key, len(ids))
	for start := 0; start < len(ids); start += store.MaxGetMany {
		found, err := src.GetMany(ctx, ids[start:min(start+store.MaxGetMany, len(ids))])
		if err != nil {
			return nil, err
		}
		for _, k := range found {
			keys[k.ID] = k
		}
	}
	return keys, nil
}
