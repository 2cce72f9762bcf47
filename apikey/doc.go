// Package apikey puts API-key authentication in front of Go HTTP handlers,
// with the keys in Firestore as SHA-256 hashes. It is built for Cloud
// Functions: a package-level Gate and its cache live across warm
// invocations, so that the hot path does not touch the database.
//
// Build the Gate on first use, not in init, so that go test, which runs
// init, never reaches for Firestore; tests call the function that builds the
// routes (NewHandler here) with a Gate of package apikeytest:
//
//	var handler = sync.OnceValues(func() (http.Handler, error) {
//		gate, err := apikey.FromEnv() // a bad variable is an error naming it
//		if err != nil {
//			return nil, err
//		}
//		gate.CloseOnSignal() // on SIGTERM, write the last usage counts
//		return NewHandler(gate), nil // gate.Protect("things:read", things), ...
//	})
//
// The function's entry point serves with handler(), answering 500 while it
// fails; a handler finds the caller's key with [FromContext]. Every refused
// request gets an RFC 9457 problem with a [Code]. The repository's
// examples/protect is such a function with its tests; docs/api.md documents
// the endpoints and codes, docs/reference.md the variables, caching,
// revocation, limits and shutdown.
package apikey
