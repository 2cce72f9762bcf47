package openapi

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:embed keygate.json
var fragment []byte

// Document is an OpenAPI 3.1 document under construction: New, then the
// operations (AddKeys, AddEndpoint, Add), then JSON or Handler. It is not
// safe for concurrent use while it is built.
type Document struct {
	doc       map[string]any
	endpoints map[string]endpoint
	codes     map[string]Code
	order     []string // the codes' names, in the order of the Code enum
	header    string
}

// Info is the document's info object.
type Info struct {
	Title       string
	Version     string
	Description string // Markdown
}

// endpoint is one of KeysHandlers' operations in keygate.json.
type endpoint struct {
	Method    string         `json:"method"`
	Path      string         `json:"path"`
	Operation map[string]any `json:"operation"`
}

// New returns a document with keygate's components and no operations, for
// keys in header (apikey.Config.Header): an apiKey scheme in that header,
// or HTTP bearer when it is Authorization, as the Gate reads it then.
func New(info Info, header string) *Document {
	var f struct {
		Components map[string]any      `json:"components"`
		Endpoints  map[string]endpoint `json:"x-keygate-endpoints"`
	}
	if err := json.Unmarshal(fragment, &f); err != nil {
		panic("openapi: keygate.json: " + err.Error()) // cannot happen: TestFragment
	}
	d := &Document{endpoints: f.Endpoints, codes: make(map[string]Code), header: header}
	infoObj := map[string]any{"title": info.Title, "version": info.Version}
	if info.Description != "" {
		infoObj["description"] = info.Description
	}
	d.doc = map[string]any{
		"openapi":    "3.1.0",
		"info":       infoObj,
		"paths":      map[string]any{},
		"components": f.Components,
	}
	scheme := d.component("securitySchemes", "apiKey")
	if http.CanonicalHeaderKey(header) == "Authorization" {
		desc := scheme["description"]
		clear(scheme)
		scheme["type"], scheme["scheme"], scheme["description"] = "http", "bearer", desc
	} else {
		scheme["name"] = header
	}
	d.replaceHeaderName(d.doc["components"])
	for _, c := range codes {
		d.AddCode(c)
	}
	return d
}

// replaceHeaderName writes the configured key header for X-API-Key in the
// prose and examples of v.
func (d *Document) replaceHeaderName(v any) {
	if d.header == "X-API-Key" {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok {
				v[k] = strings.ReplaceAll(s, "X-API-Key", d.header)
			} else {
				d.replaceHeaderName(x)
			}
		}
	case []any:
		for i, x := range v {
			if s, ok := x.(string); ok {
				v[i] = strings.ReplaceAll(s, "X-API-Key", d.header)
			} else {
				d.replaceHeaderName(x)
			}
		}
	}
}

// component returns the component of kind with name, an object.
func (d *Document) component(kind, name string) map[string]any {
	c := d.doc["components"].(map[string]any)
	m, _ := c[kind].(map[string]any)
	if m == nil {
		m = map[string]any{}
		c[kind] = m
	}
	obj, _ := m[name].(map[string]any)
	if obj == nil {
		obj = map[string]any{}
		m[name] = obj
	}
	return obj
}

// AddCode adds a problem code, one of the application's own handlers
// answers with, to the Code enum, for operations to list in their
// x-keygate-codes. A code added again replaces the first.
func (d *Document) AddCode(c Code) {
	if _, ok := d.codes[c.Code]; !ok {
		d.order = append(d.order, c.Code)
	}
	d.codes[c.Code] = c
	enum := make([]any, len(d.order))
	for i, name := range d.order {
		enum[i] = name
	}
	d.component("schemas", "Code")["enum"] = enum
}

// AddSchema adds a schema, a JSON object, to the components, for the
// application's operations to refer to as #/components/schemas/name.
func (d *Document) AddSchema(name string, schema []byte) error {
	var s map[string]any
	if err := json.Unmarshal(schema, &s); err != nil {
		return fmt.Errorf("openapi: schema %s: %w", name, err)
	}
	schemas := d.doc["components"].(map[string]any)["schemas"].(map[string]any)
	if _, ok := schemas[name]; ok {
		return fmt.Errorf("openapi: schema %s: defined twice", name)
	}
	schemas[name] = s
	return nil
}

// Guard is what stands before an operation: nothing, Protect or Manage,
// with the scope it requires. It says which refusals the operation may
// answer, and its security requirement.
type Guard struct {
	kind  guardKind
	scope string
}

type guardKind int

const (
	public guardKind = iota
	protect
	manage
)

// Public is an operation served before the key check, to anyone.
var Public = Guard{}

// Protect is an operation behind apikey.Gate.Protect(scope, ...) or
// Require(scope): the data plane, limited and counted.
func Protect(scope string) Guard { return Guard{protect, scope} }

// Manage is an operation behind apikey.Gate.Manage(scope, ...) or
// RequireManage(scope): a key endpoint, within its owner's management
// budget.
func Manage(scope string) Guard { return Guard{manage, scope} }

// Endpoint names one of apikey.KeysHandlers' operations.
type Endpoint string

// The KeysHandlers, by field.
const (
	Create   Endpoint = "create"
	List     Endpoint = "list"
	Get      Endpoint = "get"
	Revoke   Endpoint = "revoke"
	Rotate   Endpoint = "rotate"
	KeyUsage Endpoint = "keyUsage"
	Usage    Endpoint = "usage"
	WhoAmI   Endpoint = "whoami"
)

// Method is the HTTP method e is mounted with.
func (e Endpoint) Method() string {
	return strings.ToUpper(endpointMethods()[e])
}

// endpointMethods are the endpoints' methods, read from keygate.json once.
var endpointMethods = sync.OnceValue(func() map[Endpoint]string {
	m := make(map[Endpoint]string)
	for name, ep := range New(Info{}, "X-API-Key").endpoints {
		m[Endpoint(name)] = ep.Method
	}
	return m
})

// KeysPaths says where the KeysHandlers are mounted, with which scopes, as
// docs/api.md's examples mount them: Create and List at Keys, Get and
// Revoke at Keys/{id}, Rotate at Keys/{id}/rotate, KeyUsage at
// Keys/{id}/usage, all behind Manage(Scope); Usage at UsagePath behind
// Manage(UsageScope) and WhoAmI at WhoAmIPath behind Manage(""). An empty
// path leaves those out.
type KeysPaths struct {
	Keys, Scope           string
	UsagePath, UsageScope string
	WhoAmIPath            string
}

// AddKeys adds the KeysHandlers' operations where p says they are mounted.
func (d *Document) AddKeys(p KeysPaths) error {
	var errs []error
	if p.Keys != "" {
		for _, e := range []Endpoint{Create, List, Get, Revoke, Rotate, KeyUsage} {
			errs = append(errs, d.AddEndpoint(e, p.Keys+d.endpoints[string(e)].Path, p.Scope))
		}
	}
	if p.UsagePath != "" {
		errs = append(errs, d.AddEndpoint(Usage, p.UsagePath, p.UsageScope))
	}
	if p.WhoAmIPath != "" {
		errs = append(errs, d.AddEndpoint(WhoAmI, p.WhoAmIPath, ""))
	}
	return errors.Join(errs...)
}

// AddEndpoint adds the KeysHandlers' operation e, mounted at path (an
// OpenAPI path template, {id} for the key's ID) behind Manage(scope).
func (d *Document) AddEndpoint(e Endpoint, path, scope string) error {
	ep, ok := d.endpoints[string(e)]
	if !ok {
		return fmt.Errorf("openapi: no endpoint %q", e)
	}
	op, err := json.Marshal(ep.Operation)
	if err != nil {
		return err
	}
	return d.Add(ep.Method, path, Manage(scope), op)
}

// Add adds op, an OpenAPI operation object in JSON, at method and path (an
// OpenAPI path template) behind g. Its x-keygate-codes member lists the
// problem codes its handler answers with; Add adds those of g, and
// describes each status they have as an application/problem+json response
// with its codes, headers and examples, unless op describes that status
// itself. It sets the operation's security requirement and x-keygate-scope
// from g, and the headers every answer of g's kind carries.
func (d *Document) Add(method, path string, g Guard, op []byte) error {
	var o map[string]any
	if err := json.Unmarshal(op, &o); err != nil {
		return fmt.Errorf("openapi: %s %s: %w", method, path, err)
	}
	method = strings.ToLower(method)
	paths := d.doc["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	if item == nil {
		item = map[string]any{}
		paths[path] = item
	}
	if _, ok := item[method]; ok {
		return fmt.Errorf("openapi: %s %s: added twice", method, path)
	}
	var names []string
	if raw, ok := o["x-keygate-codes"].([]any); ok {
		for _, c := range raw {
			s, _ := c.(string)
			names = append(names, s)
		}
		delete(o, "x-keygate-codes")
	}
	switch g.kind {
	case protect:
		names = append(names, authCodes...)
		names = append(names, protectCodes...)
	case manage:
		names = append(names, authCodes...)
		names = append(names, manageCodes...)
	default:
		names = append(names, "misconfigured") // the Function's, whatever the path
	}
	if g.scope != "" {
		names = append(names, "insufficient_scope")
	}
	responses, _ := o["responses"].(map[string]any)
	if responses == nil {
		responses = map[string]any{}
		o["responses"] = responses
	}
	byStatus := map[int][]Code{}
	for _, n := range names {
		c, ok := d.codes[n]
		if !ok {
			return fmt.Errorf("openapi: %s %s: unknown code %q (AddCode adds one)", method, path, n)
		}
		if !slices.ContainsFunc(byStatus[c.Status], func(x Code) bool { return x.Code == n }) {
			byStatus[c.Status] = append(byStatus[c.Status], c)
		}
	}
	for status, cs := range byStatus {
		key := strconv.Itoa(status)
		if _, ok := responses[key]; !ok {
			responses[key] = d.problemResponse(status, cs)
		}
	}
	d.guardHeaders(g, responses)
	d.requireHeaders(responses)
	var prefix string
	switch {
	case g.kind == public:
		o["security"] = []any{}
		prefix = "Public: no key."
	case g.scope == "":
		o["security"] = []any{map[string]any{"apiKey": []any{}}}
		prefix = "Any valid key: no scope."
	default:
		o["security"] = []any{map[string]any{"apiKey": []any{g.scope}}}
		o["x-keygate-scope"] = g.scope
		prefix = "Scope: `" + g.scope + "`."
	}
	if desc, _ := o["description"].(string); desc != "" {
		prefix += "\n\n" + desc
	}
	o["description"] = prefix
	d.replaceHeaderName(o)
	item[method] = o
	return nil
}

// guardHeaders adds to responses the headers every answer behind g
// carries: Vary on the key header and, behind Manage, Cache-Control
// no-store on all and the management budget's RateLimit headers on
// success; behind Protect, the RateLimit headers when a rate limit applied.
func (d *Document) guardHeaders(g Guard, responses map[string]any) {
	if g.kind == public {
		return
	}
	for status, r := range responses {
		resp, _ := r.(map[string]any)
		if resp == nil || strings.HasPrefix(status, "$") {
			continue
		}
		hs, _ := resp["headers"].(map[string]any)
		if hs == nil {
			hs = map[string]any{}
		}
		ok := len(status) == 3 && status[0] == '2'
		if g.kind == manage {
			hs["Cache-Control"] = d.headerRef("Cache-Control", true)
		}
		if ok {
			hs["Vary"] = d.headerRef("Vary", true)
			for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
				hs[h] = d.headerRef(h, g.kind == manage)
			}
		}
		resp["headers"] = hs
	}
}

// requireHeaders replaces each header of responses that refers to a
// component and says required by a copy of the component that says so:
// OpenAPI ignores a reference's siblings.
func (d *Document) requireHeaders(responses map[string]any) {
	for _, r := range responses {
		resp, _ := r.(map[string]any)
		hs, _ := resp["headers"].(map[string]any)
		for name, h := range hs {
			h, _ := h.(map[string]any)
			ref, _ := h["$ref"].(string)
			if c, ok := strings.CutPrefix(ref, "#/components/headers/"); ok && h["required"] == true {
				hs[name] = d.headerRef(c, true)
			}
		}
	}
}

// headerRef is a response's header: a reference to the component, or,
// when it is required, a copy of it that says so, since a reference's
// siblings other than summary and description are ignored.
func (d *Document) headerRef(name string, required bool) map[string]any {
	if !required {
		return map[string]any{"$ref": "#/components/headers/" + name}
	}
	h := maps.Clone(d.component("headers", name))
	h["required"] = true
	return h
}

// problemResponse is the response of status with the problems cs.
func (d *Document) problemResponse(status int, cs []Code) map[string]any {
	slices.SortFunc(cs, func(a, b Code) int { return strings.Compare(a.Code, b.Code) })
	var desc strings.Builder
	desc.WriteString(http.StatusText(status) + ", with `code`:\n")
	enum := make([]any, len(cs))
	examples := map[string]any{}
	always := map[string]int{}
	for i, c := range cs {
		fmt.Fprintf(&desc, "\n- `%s`: %s", c.Code, c.When)
		enum[i] = c.Code
		examples[c.Code] = map[string]any{"$ref": "#/components/examples/" + c.Code}
		if ex := d.component("examples", c.Code); ex["value"] == nil {
			maps.Copy(ex, d.example(c)) // once a code, shared by the responses
		}
		for h, a := range c.Headers {
			n := always[h]
			if a {
				n++
			}
			always[h] = n
		}
	}
	headers := map[string]any{}
	for _, h := range slices.Sorted(maps.Keys(always)) {
		headers[h] = d.headerRef(h, always[h] == len(cs))
	}
	resp := map[string]any{
		"description": desc.String(),
		"content": map[string]any{"application/problem+json": map[string]any{
			"schema": map[string]any{
				"allOf": []any{map[string]any{"$ref": "#/components/schemas/Problem"}},
				"properties": map[string]any{
					"status": map[string]any{"const": status},
					"code":   map[string]any{"enum": enum},
				},
			},
			"examples": examples,
		}},
	}
	if len(headers) > 0 {
		resp["headers"] = headers
	}
	return resp
}

// example is c's example problem, as keygate writes it.
func (d *Document) example(c Code) map[string]any {
	ex := map[string]any{"type": "tag:keygate,2026:" + c.Code, "title": http.StatusText(c.Status),
		"status": c.Status, "detail": strings.ReplaceAll(c.Detail, "X-API-Key", d.header), "code": c.Code}
	switch c.Code {
	case "insufficient_scope":
		ex["scope"] = "keys:manage"
	case "rate_limited", "quota_exceeded":
		ex["limit"] = "key"
	case "key_limit_reached":
		ex["max_keys"] = 3
	case "invalid_json":
		ex["errors"] = []any{"owner: unknown member (want name, scopes or expires_in)"}
		ex["member"] = "owner"
	}
	if c.Status == http.StatusBadRequest && ex["errors"] == nil && !slices.Contains([]string{"multiple_api_keys", "malformed_report", "unreadable"}, c.Code) {
		ex["errors"] = []any{strings.TrimSuffix(c.Detail, ".")}
	}
	return map[string]any{"summary": c.Code, "value": ex}
}

// JSON returns the document.
func (d *Document) JSON() ([]byte, error) {
	return json.Marshal(d.doc)
}
