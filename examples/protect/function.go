// Package things is a Cloud Function of its own, protected by keygate: its
// one endpoint answers only callers whose API key grants things:read.
package things

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/keygate/keygate/apikey"
)

func init() {
	functions.HTTP("Things", Things)
}

// NewHandler is the function's endpoint behind gate. The tests call it
// with a Gate on a memory store (apikeytest.New).
func NewHandler(gate *apikey.Gate) http.Handler {
	return gate.Protect("things:read", http.HandlerFunc(listThings))
}

// gate is the function's Gate on Firestore, built on first use and kept
// across warm invocations; go test, which runs init, never builds it.
var gate = sync.OnceValues(func() (*apikey.Gate, error) {
	g, err := apikey.FromEnv()
	if err != nil {
		return nil, err // a bad variable, named
	}
	g.CloseOnSignal() // on SIGTERM, write the last usage counts
	return g, nil
})

// handler is NewHandler behind the function's Gate, built once.
var handler = sync.OnceValues(func() (http.Handler, error) {
	g, err := gate()
	if err != nil {
		return nil, err
	}
	return NewHandler(g), nil
})

// Things is the function. A bad variable is answered 500 and logged, on
// every request.
func Things(w http.ResponseWriter, r *http.Request) {
	h, err := handler()
	if err != nil {
		log.Print(err)
		http.Error(w, "misconfigured: see the function's logs", http.StatusInternalServerError)
		return
	}
	h.ServeHTTP(w, r)
}

// Check builds the function's Gate and reads Firestore once, to stop a
// local run at once when it cannot (cmd/main.go).
func Check(ctx context.Context) error {
	g, err := gate()
	if err != nil {
		return err
	}
	return g.Check(ctx)
}

// listThings answers with the things of the caller's owner.
func listThings(w http.ResponseWriter, r *http.Request) {
	key, _ := apikey.FromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"owner": key.Owner, "things": []string{"kettle", "lamp"}})
}
