// Package apikey puts API-key authentication in front of Go HTTP handlers,
// with the keys in Firestore as SHA-256 hashes. It is built for Cloud
// Functions: the Gate and its cache live across warm invocations, so that
// the hot path does not touch the database.
//
// A Cloud Function is its routes behind a Gate; [Function] makes the entry
// point, which builds the Gate from the environment on first use (never in
// init, so never under go test), and tests call the routes with a Gate of
// package apikeytest:
//
//	func init() { functions.HTTP("Things", apikey.Function(Routes)) }
//
//	func Routes(gate *apikey.Gate) http.Handler {
//		return gate.Protect("things:read", http.HandlerFunc(listThings))
//	}
//
// Handlers find the key with [FromContext]; refusals are RFC 9457 problems
// with a [Code]. Package apikey/devserver serves the function locally.
// examples/protect in the repository is such a function with its tests;
// docs/protect.md, docs/api.md and docs/reference.md document the rest.
package apikey
