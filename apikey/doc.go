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
// The entry point serves with handler(), or 500 while it fails; handlers find
// the key with [FromContext]; refusals are RFC 9457 problems with a [Code].
// examples/protect in the repository is such a function with its tests;
// docs/api.md and docs/reference.md document the endpoints and variables.
package apikey
