// Package apikey puts API-key authentication in front of Go HTTP handlers,
// with the keys in Firestore as SHA-256 hashes. It is built for Cloud
// Functions: a package-level Gate and its cache live across warm
// invocations, so that the hot path does not touch the database.
//
// Build the Gate on first use, so that go test, which runs init, never
// reaches for Firestore; tests call NewHandler with a Gate on a memory store
// (package apikeytest gives one, and keys for it):
//
//	func init() { functions.HTTP("Things", Things) }
//
//	func NewHandler(gate *apikey.Gate) http.Handler {
//		return gate.Protect("things:read", http.HandlerFunc(listThings))
//	}
//
//	var handler = sync.OnceValues(func() (http.Handler, error) {
//		gate, err := apikey.FromEnv() // a bad variable is an error naming it
//		if err != nil {
//			return nil, err
//		}
//		gate.CloseOnSignal() // on SIGTERM, write the last usage counts
//		return NewHandler(gate), nil
//	})
//
//	func Things(w http.ResponseWriter, r *http.Request) {
//		h, err := handler()
//		if err != nil {
//			log.Print(err)
//			http.Error(w, "misconfigured", http.StatusInternalServerError)
//			return
//		}
//		h.ServeHTTP(w, r)
//	}
//
//	func listThings(w http.ResponseWriter, r *http.Request) {
//		key, _ := apikey.FromContext(r.Context())
//		fmt.Fprintf(w, "things of %s\n", key.Owner)
//	}
//
// Every refused request gets an RFC 9457 problem with a [Code]. The
// repository's examples/protect is this function with its tests;
// docs/api.md documents the endpoints and codes, docs/reference.md the
// variables, caching, revocation, limits and shutdown.
package apikey
