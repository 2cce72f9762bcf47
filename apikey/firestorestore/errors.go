package firestorestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors are told apart by their gRPC code, never by their text: ABORTED
// (a transaction that contended with another, or waited too long for its
// locks: nothing applied) is retried here, with jittered backoff, for as
// long as the caller's deadline allows, then returned as store.ErrBusy;
// DEADLINE_EXCEEDED and UNAVAILABLE are the store not answering, which
// Explain turns into "no emulator" only when nothing listens at
// FIRESTORE_EMULATOR_HOST (diagnose.go); NOT_FOUND and ALREADY_EXISTS are
// the store's answers.
const (
	// retryFirst and retryMax bound the pause before a contended write's
	// next attempt: a random pause up to retryFirst, doubling up to
	// retryMax ("full jitter"), so that writers that collided do not collide
	// again in step.
	retryFirst = 20 * time.Millisecond
	retryMax   = 400 * time.Millisecond
	// attemptReserve is the least time a retry needs before the deadline
	// to be worth starting: a transaction's few round trips.
	attemptReserve = 100 * time.Millisecond
)

// errConflict is an attempt that lost an optimistic race (a precondition on
// a document another writer changed since it was read): like ABORTED,
// nothing was applied, and the write is retried.
var errConflict = errors.New("a document changed since it was read")

// retryable reports whether err is an attempt that applied nothing because
// another write contended: worth another attempt.
func retryable(err error) bool {
	return status.Code(err) == codes.Aborted || errors.Is(err, errConflict)
}

// runRetried runs f in a transaction (runTransaction, commit.go), once per
// attempt, until it succeeds, fails for a reason other than contention, or
// the deadline of ctx leaves no time for another attempt: then the error
// wraps store.ErrBusy. The client's own retries are not used: their first
// pause is a second, and their deadline error hides that the attempts were
// aborted.
func runRetried(ctx context.Context, client *firestore.Client, f func(context.Context, *firestore.Transaction) error) error {
	return retry(ctx, func() error {
		return runTransaction(ctx, client, f, firestore.MaxAttempts(1))
	})
}

// commit applies the writes of f at once (a transaction that reads
// nothing), under the preconditions they carry: if one failed (a document
// changed, or deleted, since it was read), the error is errConflict, for
// retry to read again.
func commit(ctx context.Context, client *firestore.Client, f func(context.Context, *firestore.Transaction) error) error {
	err := runTransaction(ctx, client, f, firestore.MaxAttempts(1))
	if c := status.Code(err); c == codes.FailedPrecondition || c == codes.NotFound {
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return err
}

// retry calls attempt until it succeeds, fails for a reason other than
// contention (retryable), or ctx's deadline leaves no time for another
// attempt; contended to the end (the last attempt too, so that nothing was
// applied), the error wraps store.ErrBusy.
func retry(ctx context.Context, attempt func() error) error {
	return retryBy(ctx, wallClock{}, attempt)
}

// pacer is the time retry waits by: the wall clock, or a test's, so that
// the test of a deadline does not depend on how loaded the machine is.
type pacer interface {
	until(t time.Time) time.Duration
	// sleep waits d, or until ctx ends: then it reports false.
	sleep(ctx context.Context, d time.Duration) bool
}

type wallClock struct{}

func (wallClock) until(t time.Time) time.Duration { return time.Until(t) }

func (wallClock) sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// retryBy is retry with the time of p.
func retryBy(ctx context.Context, p pacer, attempt func() error) error {
	pause := retryFirst
	for n := 1; ; n++ {
		err := attempt()
		if err == nil {
			return nil
		}
		if !retryable(err) {
			// As it is, even after contended attempts: a deadline in a
			// commit may hide a write that applied, which ErrBusy denies.
			return err
		}
		wait := rand.N(pause) + time.Millisecond
		if d, ok := ctx.Deadline(); ok && p.until(d) < wait+attemptReserve {
			return busy(n, err)
		}
		if !p.sleep(ctx, wait) {
			return busy(n, err)
		}
		pause = min(2*pause, retryMax)
	}
}

// busy is the error of a write whose n attempts all contended, the last
// err: store.ErrBusy, and store.ErrNotApplied, since none applied anything.
func busy(n int, err error) error {
	if !errors.Is(err, store.ErrNotApplied) {
		err = notApplied(err)
	}
	return fmt.Errorf("%w (%d attempts): %w", store.ErrBusy, n, err)
}

// storeError maps Firestore's NotFound and AlreadyExists to ErrKeyNotFound and
// ErrKeyExists, and wraps anything else with what was being done.
func storeError(op string, err error) error {
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.NotFound:
		return store.ErrKeyNotFound
	case codes.AlreadyExists:
		return store.ErrKeyExists
	}
	if errors.Is(err, store.ErrKeyNotFound) {
		return store.ErrKeyNotFound
	}
	return fmt.Errorf("firestore: %s: %w", op, err)
}
