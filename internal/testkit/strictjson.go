package testkit

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// StrictJSONReason is the fuzz tests' reference for what problem.DecodeObject
// refuses in a body that encoding/json reads, found without its token walk:
// invalid UTF-8; a string that decodes with more U+FFFD than the body spells
// out (a lone surrogate); null anywhere; an object with fewer members once
// decoded than it has (a duplicate) or with two that differ only in case;
// a member not among known[path] for the objects whose paths known lists
// ("" the body, "sub" its member sub). It returns "" if there is none.
func StrictJSONReason(body []byte, known map[string][]string) string {
	if !utf8.Valid(body) {
		return "invalid UTF-8"
	}
	spelled := bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
	var walk func(raw json.RawMessage, path string) string
	walk = func(raw json.RawMessage, path string) string {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return ""
		}
		switch v := v.(type) {
		case nil:
			return "null"
		case string:
			if strings.Contains(v, "\uFFFD") && !spelled {
				return "a lone surrogate"
			}
		case []any:
			var elems []json.RawMessage
			json.Unmarshal(raw, &elems)
			for _, e := range elems {
				if r := walk(e, path+"[]"); r != "" {
					return r
				}
			}
		case map[string]any:
			var members map[string]json.RawMessage
			json.Unmarshal(raw, &members)
			if countMembers(raw) != len(members) {
				return "a duplicate member"
			}
			lower := map[string]bool{}
			for name, m := range members {
				if lower[strings.ToLower(name)] {
					return "members that differ only in case"
				}
				lower[strings.ToLower(name)] = true
				if strings.Contains(name, "\uFFFD") && !spelled {
					return "a lone surrogate"
				}
				if want, ok := known[path]; ok && !slices.Contains(want, name) {
					return "an unknown member"
				}
				at := name
				if path != "" {
					at = path + "." + name
				}
				if r := walk(m, at); r != "" {
					return r
				}
			}
		}
		return ""
	}
	return walk(body, "")
}

// countMembers counts the members of the object raw with encoding/json's
// Decoder.Token, which keeps duplicates.
func countMembers(raw []byte) int {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.Token() // {
	n := 0
	for dec.More() {
		dec.Token()
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return -1
		}
		n++
	}
	return n
}
