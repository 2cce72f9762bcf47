// Package openapitest checks HTTP traffic against an OpenAPI document in
// tests: Contract.Handler puts a handler behind the document, so that every
// request a test sends through it, and every answer, is validated
// (github.com/pb33f/libopenapi-validator), and a mismatch fails the test
// with the method, the path, the status and the validator's messages.
//
// The rules, in Contract.Mismatches: every answer must be one the document
// describes for its operation (status, content type, body, required
// headers); a request the document says is malformed (parameters, body)
// must be refused, with a status of 400 or more that it describes, since
// tests send such requests on purpose; a request of no operation (an
// unknown path, or a known path with another method) must get one of the
// answers Options.Unrouted lists. The key itself is not checked against
// the document's security requirements: checking it is the function's
// job, and its refusals are answers like any other.
package openapitest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
)

// Contract is an OpenAPI document ready to check traffic against, safe for
// concurrent use. New compiles every schema, so build one per document and
// share it.
type Contract struct {
	routed   validators
	unrouted *validators // nil without Options.Unrouted
}

// validators check the same document, with and without answers' bodies:
// a HEAD answer has none, and is checked as GET's without it.
type validators struct {
	full, noBody validator.Validator
}

// Options say what the document cannot.
type Options struct {
	// Unrouted maps each status that may answer a request of no operation
	// to the document's response for it, a reference such as
	// "#/components/responses/NotFound". Any other status is a mismatch.
	Unrouted map[int]string
}

// unroutedPath is the one path of the document built from Options.Unrouted.
const unroutedPath = "/unrouted"

// New returns the contract of doc, an OpenAPI 3 document in JSON.
func New(doc []byte, opts Options) (*Contract, error) {
	routed, err := newValidators(doc)
	if err != nil {
		return nil, err
	}
	c := &Contract{routed: routed}
	if len(opts.Unrouted) > 0 {
		u, err := unroutedDocument(doc, opts.Unrouted)
		if err != nil {
			return nil, err
		}
		vs, err := newValidators(u)
		if err != nil {
			return nil, fmt.Errorf("the document of unrouted answers: %w", err)
		}
		c.unrouted = &vs
	}
	return c, nil
}

// newValidators parses doc and builds its validators. Format assertions
// are on: a "format" the document states is one the code promises.
func newValidators(doc []byte) (validators, error) {
	var vs validators
	for i, extra := range [][]config.Option{nil, {config.WithoutResponseBodyValidation()}} {
		d, err := libopenapi.NewDocument(doc)
		if err != nil {
			return vs, err
		}
		opts := append([]config.Option{config.WithoutSecurityValidation(), config.WithFormatAssertions()}, extra...)
		v, errs := validator.NewValidator(d, opts...)
		if len(errs) > 0 {
			return vs, errors.Join(errs...)
		}
		if i == 0 {
			if ok, verrs := v.ValidateDocument(); !ok {
				return vs, fmt.Errorf("not a valid OpenAPI document: %s", messages(verrs))
			}
			vs.full = v
		} else {
			vs.noBody = v
		}
	}
	return vs, nil
}

// unroutedDocument is doc with its paths replaced by unroutedPath, whose
// every method answers the statuses of unrouted, and only those, each with
// the response its reference names in doc.
func unroutedDocument(doc []byte, unrouted map[int]string) ([]byte, error) {
	d, err := Decode(doc)
	if err != nil {
		return nil, err
	}
	responses := map[string]any{}
	for s, ref := range unrouted {
		r := d.Resolve(map[string]any{"$ref": ref})
		if _, still := r["$ref"]; still || r["description"] == nil {
			return nil, fmt.Errorf("the unrouted answer %d: %s is not a response of the document", s, ref)
		}
		responses[strconv.Itoa(s)] = r
	}
	item := map[string]any{}
	for _, m := range []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"} {
		item[m] = map[string]any{"responses": responses}
	}
	d.root["paths"] = map[string]any{unroutedPath: item}
	delete(d.root, "webhooks")
	return json.Marshal(d.root)
}
