package apikey

import (
	"errors"
	"net/http"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/problem"
	"github.com/keygate/keygate/internal/view"
)

// WhoAmIHandler returns the endpoint that shows the calling key its own
// view (view.KeyView), for any valid key: what the web console shows a key
// holder without the scope to manage keys. It reads the key from the store,
// so that its last use and replacement are current. Mount it behind
// Protect with no scope:
//
//	mux.Handle("GET /v1/whoami", gate.Protect("", gate.WhoAmIHandler()))
//
// Like the keys and usage endpoints it is management: served under the
// management limit, neither refused by nor counted against the data plane's
// limits and quotas (manage.go), so that a console can sign in while a
// leaked key burns its owner's quota.
func (g *Gate) WhoAmIHandler() http.Handler {
	return management{http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := g.caller(w, r)
		if e == nil {
			return
		}
		k, err := g.store.Get(r.Context(), e.key.ID)
		switch {
		case errors.Is(err, store.ErrKeyNotFound): // deleted since it was cached
			k = e.key
		case err != nil:
			g.refuse(w, r, g.storeUnavailable(err), e.key.Hint)
			return
		}
		problem.WriteJSON(w, http.StatusOK, view.Of(k, g.now(), g.cfg.DefaultScopes))
	})}
}
