package openapitest

import (
	"encoding/json"
	"slices"
	"strings"
)

// Operation is one of a document's operations, as a generated request
// needs it.
type Operation struct {
	Method string // upper case
	Path   string // a template: /v1/keys/{id}
	// Scope is the scope its security requirement names, if any.
	Scope string
	// Public is whether it needs no key: an empty security requirement.
	Public bool
	// Params are its path and query parameters.
	Params []Param
	// Body is the schema of its application/json body; nil for none.
	Body Schema
}

// Param is a parameter of an operation.
type Param struct {
	Name, In string // In: "path" or "query"
	Required bool
	Schema   Schema
}

// Schema is a JSON Schema, as decoded from the document: its references
// are resolved by Document.Resolve.
type Schema map[string]any

// Document is an OpenAPI document decoded as JSON, for generating
// requests from it.
type Document struct {
	root map[string]any
}

// Decode decodes doc, an OpenAPI document in JSON.
func Decode(doc []byte) (*Document, error) {
	var d Document
	if err := json.Unmarshal(doc, &d.root); err != nil {
		return nil, err
	}
	return &d, nil
}

// Resolve follows s's local reference ("$ref": "#/a/b"), if it has one.
func (d *Document) Resolve(s map[string]any) map[string]any {
	for range 10 { // a reference to a reference, but no cycle
		ref, ok := s["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") {
			return s
		}
		var cur any = d.root
		for part := range strings.SplitSeq(ref[2:], "/") {
			part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
			m, _ := cur.(map[string]any)
			cur = m[part]
		}
		next, ok := cur.(map[string]any)
		if !ok {
			return s
		}
		s = next
	}
	return s
}

// Operations lists the document's operations, sorted by path and method.
func (d *Document) Operations() []Operation {
	var ops []Operation
	paths, _ := d.root["paths"].(map[string]any)
	for path, v := range paths {
		item := d.Resolve(asMap(v))
		for _, method := range []string{"get", "put", "post", "delete", "patch", "head", "options"} {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			o := Operation{Method: strings.ToUpper(method), Path: path}
			for _, p := range append(asSlice(item["parameters"]), asSlice(op["parameters"])...) {
				p := d.Resolve(asMap(p))
				in, _ := p["in"].(string)
				if in != "path" && in != "query" {
					continue
				}
				name, _ := p["name"].(string)
				req, _ := p["required"].(bool)
				o.Params = append(o.Params, Param{Name: name, In: in, Required: req, Schema: asMap(p["schema"])})
			}
			if rb := d.Resolve(asMap(op["requestBody"])); rb != nil {
				content := asMap(rb["content"])
				if mt := asMap(content["application/json"]); mt != nil {
					o.Body = asMap(mt["schema"])
				}
			}
			security, ok := op["security"]
			if !ok {
				security = d.root["security"]
			}
			reqs := asSlice(security)
			o.Public = len(reqs) == 0 || slices.ContainsFunc(reqs, func(r any) bool { return len(asMap(r)) == 0 })
			for _, r := range reqs {
				for _, scopes := range asMap(r) {
					for _, s := range asSlice(scopes) {
						o.Scope, _ = s.(string)
					}
				}
			}
			ops = append(ops, o)
		}
	}
	slices.SortFunc(ops, func(a, b Operation) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return ops
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
