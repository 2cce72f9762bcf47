package apikey

import (
	"context"
	"errors"
	"fmt"

	"github.com/keygate/keygate/apikey/store"
)

// checkID is the key ID that Check reads: a valid ID that no key has.
const checkID = "0000000000000000000000000000000000000000000000000000000000000000"

// Check reads the store once and says what to do if it cannot: for start-up.
func (g *Gate) Check(ctx context.Context) error {
	_, err := g.store.Get(ctx, checkID)
	if err == nil || errors.Is(err, store.ErrKeyNotFound) {
		return nil
	}
	return fmt.Errorf("keygate: the key store does not answer: %w", g.explain(err))
}
