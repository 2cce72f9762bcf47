package apikey

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// failingWrites is a store whose key writes fail with err.
type failingWrites struct {
	store.Store
	err error
}

func (s failingWrites) Revoke(context.Context, string, time.Time) (store.Key, error) {
	return store.Key{}, s.err
}

func (s failingWrites) CreateCapped(context.Context, store.Key, int, time.Time) error { return s.err }

// TestStoreBusy: a write that contention kept out until the deadline is 503
// store_busy, with Retry-After and a detail that says so, logged with its
// cause; a store that did not answer is still store_unavailable.
func TestStoreBusy(t *testing.T) {
	busy := fmt.Errorf("firestore: revoke key: %w (9 attempts): rpc error: code = Aborted desc = contention", store.ErrBusy)
	for _, c := range []struct {
		err        error
		code, says string
	}{
		{busy, "store_busy", "busy"},
		{errors.New("firestore: revoke key: context deadline exceeded"), "store_unavailable", "cannot be checked"},
	} {
		ms := memstore.New()
		s := newServer(t, failingWrites{ms, c.err})
		manager, _ := s.manager(t, "acme")
		_, k := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
		for _, w := range []struct{ method, target, body string }{
			{"DELETE", "/v1/keys/" + k.ID, ""},
			{"POST", "/v1/keys", `{"name":"n","scopes":["` + scopeThings + `"]}`},
		} {
			resp := s.call(w.method, w.target, manager, w.body)
			testkit.WantProblem(t, resp, http.StatusServiceUnavailable, c.code)
			if resp.Header().Get("Retry-After") != "1" || !strings.Contains(resp.Body.String(), c.says) {
				t.Errorf("%s %s: Retry-After %q, body %s; want 1 and a detail that says %q", w.method, w.target, resp.Header().Get("Retry-After"), resp.Body, c.says)
			}
		}
		if logs := s.logs.String(); !strings.Contains(logs, `"reason":"`+c.code+`"`) || !strings.Contains(logs, c.err.Error()[:30]) {
			t.Errorf("the refusals' log lacks the reason %s or the cause:\n%s", c.code, logs)
		}
	}
}
