package storetest_test

import (
	"testing"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/apikey/storetest"
	"github.com/keygate/keygate/internal/testkit"
)

// TestFaultyStoreContract runs the contract on the tests' shared fake,
// testkit.FaultyStore, while it is neither down nor hanging: the tests that
// use it in front of the Gate rely on it being a store like any other until
// told to fail.
func TestFaultyStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return &testkit.FaultyStore{Store: memstore.New()} })
}

// TestLostAnswerStoreContract runs the contract on testkit.LostAnswerStore
// while it loses no answer: until told to, it is a store like any other.
func TestLostAnswerStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return &testkit.LostAnswerStore{Store: memstore.New()} })
}
