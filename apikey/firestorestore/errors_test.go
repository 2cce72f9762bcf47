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
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		n := 0
		err := retry(ctx, func() error { n++; return aborted })
		if !errors.Is(err, store.ErrBusy) || status.Code(err) != codes.Aborted || ctx.Err() != nil || n < 3 {
			t.Errorf("retry = %v after %d attempts, deadline passed %v; want ErrBusy wrapping ABORTED, before the deadline, after several", err, n, ctx.Err())
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
