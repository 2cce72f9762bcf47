package apikey

import (
	"context"
	"errors"
	"fmt"

	"github.com/keygate/keygate/apikey/store"
)

// checkID is the key ID that Check reads: a valid ID that no key has.
const checkID = "0000000000000000000000000000000000000000000000000000000000000000"

// Check reads one document from the store, within ctx and STORE_TIMEOUT,
// and returns an error that says what to do when it cannot: no
// credentials, no emulator at FIRESTORE_EMULATOR_HOST, no permission. New
// and FromEnv do not wait for the store (an instance starts while the store
// is away, and serves cached keys through an outage); call Check at
// start-up to stop an instance that could never check a key, or from a
// readiness probe.
func (g *Gate) Check(ctx context.Context) error {
	_, err := g.store.Get(ctx, checkID)
	if err == nil || errors.Is(err, store.ErrKeyNotFound) {
		return nil
	}
	return fmt.Errorf("keygate: the key store does not answer: %w", g.explain(err))
}
