package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/keygate/keygate/internal/meter"
)

// replayUsage is usage replay: it writes the usage_unwritten entries of the
// log entries in file (- for standard input) that the store confirms
// (meter.CheckReplay), reports the others with their line and reason, and
// with dryRun prints what it would write and writes nothing. Anything
// refused makes it fail, after writing the rest.
func (c *cli) replayUsage(file string, dryRun bool) error {
	var in io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	batches, err := meter.ReadUnwritten(in)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(batches) == 0 {
		fmt.Fprintf(c.stdout, "no %s entries in %s: nothing to replay\n", meter.UnwrittenKey, file)
		return nil
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	st, err := c.store()
	if err != nil {
		return err
	}
	usage, err := usageOf(st)
	if err != nil {
		return err
	}
	src, ok := st.(meter.ReplaySource)
	if !ok {
		return errors.New("this store cannot tell which keys and batches it holds: nothing replayed")
	}
	// A count's day may follow its key's revocation or expiry by as long as
	// an instance's cache may serve the key after (fresh, then stale).
	plan, err := meter.CheckReplay(c.ctx, src, batches, c.now(), cfg.CacheTTL+cfg.StaleTTL)
	if err != nil {
		return fmt.Errorf("%w; nothing replayed", err)
	}
	for _, r := range plan.Refused {
		fmt.Fprintf(c.stderr, "refused: %s\n", r)
	}
	var requests int64
	instances := map[string]bool{}
	for _, b := range plan.Write {
		instances[b.Instance] = true
		var n int64
		for _, cnt := range b.Counts {
			n += cnt.Requests
		}
		requests += n
		if dryRun {
			fmt.Fprintf(c.stdout, "would write line %d: instance %s batch %d: %s, %s\n", b.Line, b.Instance, b.Seq,
				plural(len(b.Counts), "count", "counts"), plural(int(n), "request", "requests"))
		}
	}
	summary := fmt.Sprintf("%s of %s, %s in all", plural(len(plan.Write), "batch", "batches"),
		plural(len(instances), "instance", "instances"), plural(int(requests), "request", "requests"))
	if len(plan.Held) > 0 {
		summary += fmt.Sprintf("; %s the store held already, not written again", plural(len(plan.Held), "batch", "batches"))
	}
	if dryRun {
		fmt.Fprintf(c.stdout, "dry run: would replay %s; nothing written\n", summary)
	} else {
		if err := meter.Replay(c.ctx, usage, plan.Write); err != nil {
			return fmt.Errorf("%w; replaying again resumes: batches already written add nothing", err)
		}
		fmt.Fprintf(c.stdout, "replayed %s\n", summary)
	}
	if len(plan.Refused) > 0 {
		return fmt.Errorf("%s refused (above), not written", plural(len(plan.Refused), "count or batch", "counts or batches"))
	}
	return nil
}
