package things

import (
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate/apikey/apikeytest"
)

func TestThings(t *testing.T) {
	g := apikeytest.New(t) // a Gate on a memory store: no Firestore, no network
	for key, want := range map[string]int{
		g.Mint(t, "acme", "things:read"): 200, // a key with the scope
		g.Mint(t, "acme", "other:read"):  403, // a key without it
		"kg_not-a-key":                   401,
		"":                               401, // no key
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		if Routes(g.Gate).ServeHTTP(w, r); w.Code != want {
			t.Errorf("key %.8q: status %d, want %d: %s", key, w.Code, want, w.Body)
		}
	}
}
