// Package openapicheck checks an OpenAPI 3.1 document in tests: valid
// against the OpenAPI 3.1 schema (libopenapi-validator's document
// validation), its references resolved, and every example valid against
// its own schema. A test package only: the function does not link it.
package openapicheck

import (
	"fmt"
	"testing"

	"github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// Check fails t for each way spec is not a valid OpenAPI 3.1 document
// whose examples match their schemas. It returns the model, for more
// checks.
func Check(t testing.TB, spec []byte) *v3.Document {
	t.Helper()
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatalf("the document does not parse: %v", err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", v)
	}
	v, errs := validator.NewValidator(doc)
	for _, err := range errs {
		t.Errorf("validator: %v", err)
	}
	if v != nil {
		if ok, verrs := v.ValidateDocument(); !ok {
			for _, e := range verrs {
				t.Errorf("not valid OpenAPI 3.1: %s: %s (%s) at %d:%d", e.Message, e.Reason, e.Context, e.SpecLine, e.SpecCol)
				for _, se := range e.SchemaValidationErrors {
					t.Errorf("  %s: %s", se.FieldPath+" "+se.KeywordLocation, se.Reason)
				}
			}
		}
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("the model does not build (a reference?): %v", err)
	}
	m := &model.Model
	sv := schema_validation.NewSchemaValidator()
	check := func(where string, schema *base.SchemaProxy, example *yaml.Node) {
		t.Helper()
		if schema == nil || example == nil {
			return
		}
		var value any
		if err := example.Decode(&value); err != nil {
			t.Errorf("%s: the example does not decode: %v", where, err)
			return
		}
		s := schema.Schema()
		if s == nil {
			t.Errorf("%s: the schema does not build: %v", where, schema.GetBuildError())
			return
		}
		if ok, errs := sv.ValidateSchemaObject(s, value); !ok {
			for _, e := range errs {
				t.Errorf("%s: the example does not match its schema: %s: %s", where, e.Message, e.Reason)
				for _, se := range e.SchemaValidationErrors {
					t.Errorf("  %s: %s", se.FieldPath+" "+se.KeywordLocation, se.Reason)
				}
			}
		}
	}
	if m.Components != nil {
		for name, s := range m.Components.Schemas.FromOldest() {
			for i, ex := range s.Schema().Examples {
				check(fmt.Sprintf("schema %s, examples[%d]", name, i), s, ex)
			}
		}
		for name, p := range m.Components.Parameters.FromOldest() {
			check("parameter "+name, p.Schema, p.Example)
		}
	}
	for path, item := range m.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			at := method + " " + path
			for _, p := range op.Parameters {
				check(at+", parameter "+p.Name, p.Schema, p.Example)
			}
			if op.RequestBody != nil {
				for mt, c := range op.RequestBody.Content.FromOldest() {
					check(at+", request "+mt, c.Schema, c.Example)
					for name, ex := range c.Examples.FromOldest() {
						check(at+", request "+mt+" example "+name, c.Schema, ex.Value)
					}
				}
			}
			if op.Responses == nil {
				t.Errorf("%s: no responses", at)
				continue
			}
			for status, r := range op.Responses.Codes.FromOldest() {
				for mt, c := range r.Content.FromOldest() {
					check(at+" "+status+" "+mt, c.Schema, c.Example)
					for name, ex := range c.Examples.FromOldest() {
						check(at+" "+status+" "+mt+" example "+name, c.Schema, ex.Value)
					}
				}
			}
		}
	}
	return m
}
