package main

import (
	"fmt"
	"io"
	"os"

	"github.com/keygate/keygate/internal/meter"
)

// replayUsage is usage replay: it writes the usage_unwritten entries of the
// log entries in file (- for standard input).
func (c *cli) replayUsage(file string) error {
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
	st, err := c.store()
	if err != nil {
		return err
	}
	usage, err := usageOf(st)
	if err != nil {
		return err
	}
	if err := meter.Replay(c.ctx, usage, batches); err != nil {
		return fmt.Errorf("%w; replaying again resumes: batches already written add nothing", err)
	}
	var requests int64
	instances := map[string]bool{}
	for _, b := range batches {
		instances[b.Instance] = true
		for _, n := range b.Counts {
			requests += n.Requests
		}
	}
	fmt.Fprintf(c.stdout, "replayed %s of %s, %s in all; a batch the store held already added nothing\n",
		plural(len(batches), "batch", "batches"), plural(len(instances), "instance", "instances"),
		plural(int(requests), "request", "requests"))
	return nil
}
