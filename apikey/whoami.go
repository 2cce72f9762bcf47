package apikey

import (
	"errors"
	"net/http"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/problem"
	"github.com/keygate/keygate/internal/view"
)

// whoAmI serves KeysHandlers.WhoAmI: the calling key's own view, for any
// valid key.
func (g *Gate) whoAmI(w http.ResponseWriter, r *http.Request, e *cacheEntry) {
	k, err := g.store.Get(r.Context(), e.key.ID)
	switch {
	case errors.Is(err, store.ErrKeyNotFound): // deleted since it was cached
		k = e.key
	case err != nil:
		g.refuse(w, r, g.storeUnavailable(err), e.key.Hint)
		return
	}
	problem.WriteJSON(w, http.StatusOK, view.Of(k, g.now(), g.cfg.DefaultScopes))
}
