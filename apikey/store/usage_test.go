package store_test

import (
	"testing"

	"github.com/keygate/keygate/apikey/store"
)

func TestMaxUsageBatchFitsATransaction(t *testing.T) {
	// Per count: key day, key month, owner day, owner month, the key's
	// last_used_at; plus the meter.
	if w := 5*store.MaxUsageBatch + 1; w > 500 || 5*(store.MaxUsageBatch+1)+1 <= 500 {
		t.Errorf("MaxUsageBatch %d makes up to %d writes: want the largest batch within 500", store.MaxUsageBatch, w)
	}
}
