package firestorestore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keygate/keygate/apikey/store"
)

// TestRetry: contended attempts (ABORTED, or a failed precondition) are
// tried again until one succeeds, or until the deadline leaves no time,
// then store.ErrBusy, before the deadline; any other error ends it as it
// is, without ErrBusy, since it may hide a write that applied.
func TestRetry(t *testing.T) {
	aborted := status.Error(codes.Aborted, "Transaction lock timeout.")
	conflict := fmt.Errorf("%w: %w", errConflict, status.Error(codes.FailedPrecondition, "update time"))
	t.Run("succeeds after contention", func(t *testing.T) {
		n := 0
		err := retry(context.Background(), func() error {
			if n++; n < 4 {
				return []error{aborted, conflict}[n%2]
			}
			return nil
		})
		if err != nil || n != 4 {
			t.Errorf("retry = %v after %d attempts, want nil after 4", err, n)
		}
	})
	t.Run("contended to the deadline", func(t *testing.T) {
		// The time is a fake one that moves only by retry's pauses (and by
		// each attempt's 30 ms), 500 ms before the deadline: how loaded the
		// machine is changes nothing. The context's real deadline is an
		// hour away, never reached.
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		deadline, _ := ctx.Deadline()
		clock := &fakePacer{now: deadline.Add(-500 * time.Millisecond)}
		n := 0
		err := retryBy(ctx, clock, func() error { n++; clock.now = clock.now.Add(30 * time.Millisecond); return aborted })
		left := deadline.Sub(clock.now)
		if !errors.Is(err, store.ErrBusy) || status.Code(err) != codes.Aborted || left <= 0 || n < 3 {
			t.Errorf("retry = %v after %d attempts, %v before the deadline; want ErrBusy wrapping ABORTED, before the deadline, after several", err, n, left)
		}
		// It gave up only when the next pause and an attempt did not fit.
		if left >= retryMax+attemptReserve+time.Millisecond {
			t.Errorf("retry gave up %v before the deadline: room for another attempt", left)
		}
	})
	t.Run("another error ends it as it is", func(t *testing.T) {
		deadline := status.Error(codes.DeadlineExceeded, "commit")
		n := 0
		err := retry(context.Background(), func() error {
			if n++; n < 3 {
				return conflict
			}
			return deadline
		})
		if err != deadline || n != 3 {
			t.Errorf("retry = %v after %d attempts, want the deadline error alone after 3", err, n)
		}
	})
}

// fakePacer is a clock that moves only when retry sleeps (or an attempt
// moves it), for TestRetry.
type fakePacer struct{ now time.Time }

func (p *fakePacer) until(t time.Time) time.Duration { return t.Sub(p.now) }

func (p *fakePacer) sleep(_ context.Context, d time.Duration) bool {
	p.now = p.now.Add(d)
	return true
}
