package firestorestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
// transaction could not begin, every time.
//
// When ctx ends before any commit was sent, it returns at once, and the
// transaction sends none. When a commit is on its way, it waits for the
// answer as long again as ctx allowed (the wait before ctx ended, or 10 s
// without a deadline): a commit cut off at the deadline may still be
// applied after an immediate read-back found nothing (two instances
// creating keys for one owner at once did that on the emulator), so an
// error it returns is one whose commit has finished, unless that wait ends
// too. It never waits for the rollback that RunTransaction makes after a
// failed commit with a context of its own (up to 5 s, in an outage).
func runTransaction(ctx context.Context, client *firestore.Client, f func(context.Context, *firestore.Transaction) error, opts ...firestore.TransactionOption) error {
	return transact(ctx, client, true, f, opts...)
}

// runIdempotent is runTransaction for a write that its caller sends again,
// under the same identity, rather than reads back (AddUsage, by instance and
// seq): it returns when ctx ends, commit sent or not. A shutdown's last
// flush must end within its deadline, and its batch stays in doubt anyway.
func runIdempotent(ctx context.Context, client *firestore.Client, f func(context.Context, *firestore.Transaction) error) error {
	return transact(ctx, client, false, f)
}

// transact runs f in a transaction; awaitSent says whether to wait for a
// sent commit's answer once ctx has ended.
func transact(ctx context.Context, client *firestore.Client, awaitSent bool, f func(context.Context, *firestore.Transaction) error, opts ...firestore.TransactionOption) error {
	wait := commitWait
	if deadline, ok := ctx.Deadline(); ok {
		wait = time.Until(deadline)
	}
	txCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel() // what is left of an abandoned transaction
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(wait, cancel) })
	defer stop()
	var mu sync.Mutex
	committing, abandoned := false, false
	done := make(chan error, 1)
	go func() {
		done <- client.RunTransaction(txCtx, func(ctx context.Context, tx *firestore.Transaction) error {
			err := f(ctx, tx)
			mu.Lock()
			defer mu.Unlock()
			if abandoned {
				return errAbandoned
			}
			committing = committing || err == nil
			return err
		}, opts...)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		mu.Lock()
		abandoned = true
		sent := committing
		mu.Unlock()
		err = ctx.Err()
		if sent && awaitSent {
			select {
			case err = <-done:
			case <-txCtx.Done():
			}
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

// commitWait is how long runTransaction waits for a commit's answer once
// its context, without a deadline, is cancelled.
const commitWait = 10 * time.Second

// errAbandoned ends a transaction whose caller has stopped waiting, before
// it commits.
var errAbandoned = errors.New("firestore: the caller stopped waiting")

// notApplied marks err, the failure of a write that sent nothing.
func notApplied(err error) error { return fmt.Errorf("%w: %w", store.ErrNotApplied, err) }

// clientError is a failure to create the client: no call was sent.
type clientError struct{ err error }

func (e clientError) Error() string   { return "creating Firestore client: " + e.err.Error() }
func (e clientError) Unwrap() []error { return []error{store.ErrNotApplied, e.err} }

// rewriteKey reads the key at ref and hands it to write with its snapshot;
// write commits its change under firestore.LastUpdateTime(snap.UpdateTime),
// so that a key changed since it was read fails the commit (errConflict)
// and retry reads it again. A key that cannot be read is not applied
// (notApplied): nothing was written.
func rewriteKey(ctx context.Context, ref *firestore.DocumentRef, write func(snap *firestore.DocumentSnapshot, k store.Key) error) error {
	return retry(ctx, func() error {
		snap, err := ref.Get(ctx)
		if err != nil {
			return notApplied(err)
		}
		k, err := decodeKey(snap)
		if err != nil {
			return err
		}
		return write(snap, k)
	})
}
