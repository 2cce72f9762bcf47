package openapitest

import (
	"fmt"
	"math"
	"slices"
	"time"

	"pgregory.net/rapid"
)

// maxDepth bounds the nesting of generated values, maxItems the length of
// generated arrays beyond their minItems.
const (
	maxDepth = 6
	maxItems = 6
)

// Value draws a value that s describes, mostly a valid one: within its
// type, enum, bounds, lengths, pattern and format (date-time), with its
// required members and some of its optional ones, and no others where
// additionalProperties is false. What it does not model (uniqueItems kept
// by chance, allOf, not) may make a value invalid, which the checks that
// use it must allow for, as they do for mutated ones.
func (d *Document) Value(t *rapid.T, s Schema) any {
	return d.value(t, s, "body", 0)
}

func (d *Document) value(t *rapid.T, s Schema, label string, depth int) any {
	s = d.Resolve(s)
	if c, ok := s["const"]; ok {
		return c
	}
	if e := asSlice(s["enum"]); len(e) > 0 {
		return rapid.SampledFrom(e).Draw(t, label)
	}
	for _, key := range []string{"oneOf", "anyOf"} {
		if alts := asSlice(s[key]); len(alts) > 0 {
			i := rapid.IntRange(0, len(alts)-1).Draw(t, label+" "+key)
			return d.value(t, asMap(alts[i]), label, depth+1)
		}
	}
	typ := schemaType(t, s, label)
	if depth >= maxDepth && (typ == "object" || typ == "array") {
		typ = "null"
	}
	switch typ {
	case "object":
		return d.object(t, s, label, depth)
	case "array":
		lo, hi := intKeyword(s, "minItems", 0), intKeyword(s, "maxItems", -1)
		if hi < 0 || hi > lo+maxItems {
			hi = lo + maxItems
		}
		n := rapid.IntRange(lo, hi).Draw(t, label+" length")
		items := asMap(s["items"])
		a := make([]any, 0, n)
		for i := range n {
			v := d.value(t, items, fmt.Sprintf("%s[%d]", label, i), depth+1)
			if s["uniqueItems"] == true && slices.ContainsFunc(a, func(x any) bool { return fmt.Sprint(x) == fmt.Sprint(v) }) {
				continue
			}
			a = append(a, v)
		}
		return a
	case "string":
		return str(t, s, label)
	case "integer":
		lo, hi := bounds(s, -1000, 1000)
		return rapid.Int64Range(int64(math.Ceil(lo)), int64(math.Floor(hi))).Draw(t, label)
	case "number":
		lo, hi := bounds(s, -1000, 1000)
		return rapid.Float64Range(lo, hi).Draw(t, label)
	case "boolean":
		return rapid.Bool().Draw(t, label)
	}
	return nil
}

// object draws an object: every required member, each optional one or
// not.
func (d *Document) object(t *rapid.T, s Schema, label string, depth int) map[string]any {
	props := asMap(s["properties"])
	required := asSlice(s["required"])
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	slices.Sort(names)
	o := make(map[string]any)
	for _, name := range names {
		if !slices.Contains(required, any(name)) && !rapid.Bool().Draw(t, label+"."+name+"?") {
			continue
		}
		o[name] = d.value(t, asMap(props[name]), label+"."+name, depth+1)
	}
	return o
}

// schemaType draws one of s's types ("type" may be a list in 3.1); "" for
// a schema without one.
func schemaType(t *rapid.T, s Schema, label string) string {
	switch typ := s["type"].(type) {
	case string:
		return typ
	case []any:
		if len(typ) > 0 {
			v, _ := rapid.SampledFrom(typ).Draw(t, label+" type").(string)
			return v
		}
	}
	if s["properties"] != nil {
		return "object"
	}
	return ""
}

// str draws a string of s's pattern, or format, or length.
func str(t *rapid.T, s Schema, label string) string {
	if p, ok := s["pattern"].(string); ok {
		return rapid.StringMatching(p).Draw(t, label)
	}
	switch s["format"] {
	case "date-time":
		sec := rapid.Int64Range(0, 4102444800).Draw(t, label) // 1970 to 2100
		return time.Unix(sec, 0).UTC().Format(time.RFC3339)
	}
	lo, hi := intKeyword(s, "minLength", 0), intKeyword(s, "maxLength", -1)
	if hi < 0 || hi > lo+40 {
		hi = lo + 40
	}
	return rapid.StringN(lo, hi, -1).Draw(t, label)
}

// intKeyword is s's integer keyword, or def.
func intKeyword(s Schema, key string, def int) int {
	if f, ok := s[key].(float64); ok {
		return int(f)
	}
	return def
}

// bounds are s's minimum and maximum, exclusive ones made inclusive for
// integers, each within [lo, hi] of the defaults when s has none.
func bounds(s Schema, lo, hi float64) (float64, float64) {
	min, hasMin := s["minimum"].(float64)
	max, hasMax := s["maximum"].(float64)
	if f, ok := s["exclusiveMinimum"].(float64); ok {
		min, hasMin = f+1, true
	}
	if f, ok := s["exclusiveMaximum"].(float64); ok {
		max, hasMax = f-1, true
	}
	switch {
	case hasMin && hasMax:
		return min, max
	case hasMin:
		return min, min + (hi - lo)
	case hasMax:
		return max - (hi - lo), max
	}
	return lo, hi
}
