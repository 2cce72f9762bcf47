package firestorestore

import (
	"context"
	"fmt"
	"sync"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/apikey/store"
)

// What a failed write proves. The Firestore client resends a Commit whose
// answer it lost (UNAVAILABLE), and reports what the resent one is
// answered (internal/faultproxy's doc says what): outside a transaction a
// create's own earlier commit makes it ALREADY_EXISTS; in one, the resent
// commit is refused INVALID_ARGUMENT, or the deadline ends it. So every
// key and plan write runs in a transaction, where ALREADY_EXISTS and
// NOT_FOUND are the store's true answers, and an error met before the
// commit was sent is marked store.ErrNotApplied; any other error leaves the
// outcome unknown, for store.ConfirmWrites to read back.

// runTransaction is client.RunTransaction, with its error marked
// store.ErrNotApplied when no attempt sent its commit: f failed, or the
// transaction could not begin, every time. It returns when ctx ends, even
// if RunTransaction has not: after a failed commit, RunTransaction rolls
// back with a context of its own, for up to 5 s, which in an outage would
// keep the caller that long past its deadline. The transaction then ends
// on its own, and sends no commit that it had not sent already.
func runTransaction(ctx context.Context, client *firestore.Client, f func(context.Context, *firestore.Transaction) error, opts ...firestore.TransactionOption) error {
	var mu sync.Mutex
	committing, abandoned := false, false
	done := make(chan error, 1)
	go func() {
		done <- client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			err := f(ctx, tx)
			mu.Lock()
			defer mu.Unlock()
			if abandoned {
				return ctx.Err()
			}
			committing = committing || err == nil
			return err
		}, opts...)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done:
		default:
			err = ctx.Err()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	abandoned = true
	if err != nil && !committing {
		return notApplied(err)
	}
	return err
}

// notApplied marks err, the failure of a write that sent nothing.
func notApplied(err error) error { return fmt.Errorf("%w: %w", store.ErrNotApplied, err) }

// clientError is a failure to create the client: no call was sent.
type clientError struct{ err error }

func (e clientError) Error() string   { return "creating Firestore client: " + e.err.Error() }
func (e clientError) Unwrap() []error { return []error{store.ErrNotApplied, e.err} }
