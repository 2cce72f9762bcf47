// Package things is a Cloud Function of its own, protected by keygate: its
// one endpoint answers only callers whose API key grants things:read.
package things

import (
	"context"
	"encoding/json"
	"log"
	"net/http"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/keygate/keygate/apikey"
)

// Things is the function: listThings behind the gate. The gate, with its
// Firestore client and key cache, is built once per instance and kept
// across warm invocations.
var Things http.Handler

func init() {
	gate, err := apikey.FromEnv(context.Background())
	if err != nil {
		log.Fatal(err) // a bad variable stops the instance, naming it
	}
	gate.CloseOnSignal() // on SIGTERM, write the last usage counts
	Things = gate.Protect("things:read", http.HandlerFunc(listThings))
	functions.HTTP("Things", Things.ServeHTTP)
}

// listThings answers with the things of the caller's owner.
func listThings(w http.ResponseWriter, r *http.Request) {
	key, _ := apikey.FromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"owner": key.Owner, "things": []string{"kettle", "lamp"}})
}
