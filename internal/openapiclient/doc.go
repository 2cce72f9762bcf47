// Package openapiclient is a client of the function's API generated from
// its OpenAPI document by oapi-codegen (a go tool of this module), for the
// operations oapi-codegen.yaml includes: the proof that a standard
// generator reads the document (cmd/local's TestGeneratedClient calls
// GET /v1/keys with it). openapi.json is the document it was generated
// from; TestGeneratedClientCurrent fails when either is stale: run go
// generate ./internal/openapiclient.
package openapiclient

//go:generate go run ./document openapi.json
//go:generate go tool oapi-codegen -config oapi-codegen.yaml openapi.json
