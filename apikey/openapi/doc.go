// Package openapi describes a keygate API as an OpenAPI 3.1 document: the
// key holders' endpoints (apikey.KeysHandlers) under the paths where they
// are mounted, the problem types of every refusal with their codes, the
// key header as the security scheme, and the operations of the
// application that mounts them, each with the scope it needs.
//
// The document is written by hand, not generated from the Go code: keygate
// has no schema types to generate it from (its answers are plain structs
// and strict decoders), a generator would lose the prose that says what a
// field means and when a refusal is sent, and a hand-written document is
// the contract to check the code against. keygate.json holds the library's
// part; the codes each operation can answer are listed by name and grouped
// by status here, so that each code's status, headers and example are said
// once. Tests check the document against the code: every apikey.Code is in
// it, and the examples validate against their schemas; the function's
// tests check every response they get against it.
package openapi
