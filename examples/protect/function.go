// Package things is a Cloud Function protected by keygate.
package things

import (
	"fmt"
	"net/http"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/keygate/keygate/apikey"
)

func init() { functions.HTTP("Things", apikey.Function(Routes)) }

// Routes serves keys that grant things:read; tests call it with apikeytest.
func Routes(gate *apikey.Gate) http.Handler {
	return gate.Protect("things:read", http.HandlerFunc(listThings))
}

func listThings(w http.ResponseWriter, r *http.Request) {
	key, _ := apikey.FromContext(r.Context())
	fmt.Fprintf(w, "%s's things: kettle, lamp\n", key.Owner)
}
