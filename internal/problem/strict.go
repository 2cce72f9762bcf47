package problem

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// strictError walks body's tokens alongside the Go type it is decoded into
// and returns the first thing encoding/json would accept but read
// ambiguously or lossily, with the member it is in; "" when there is none,
// or when the body is not well-formed JSON (the decoder then says so):
//
//   - a member twice in one object (encoding/json keeps the last), or twice
//     in different letter case;
//   - a member the struct lacks, also one that matches a field only in
//     another letter case (encoding/json matches names case-insensitively);
//   - invalid UTF-8 in a string or a member name, raw or as an escaped lone
//     surrogate such as \ud800 (encoding/json puts U+FFFD in its place);
//   - null anywhere (encoding/json makes it the zero value, so that
//     "scopes": null would mean the default scopes): omit the member
//     instead.
//
// encoding/json/v2 refuses most of these itself, but it needs
// GOEXPERIMENT=jsonv2 in Go 1.26.
func strictError(body []byte, t reflect.Type) (msg, member string) {
	w := strictWalker{dec: json.NewDecoder(bytes.NewReader(body)), body: body}
	w.dec.UseNumber() // no float parsing: only the shape matters here
	w.value(t, "")
	return w.msg, w.member
}

// strictWalker is the state of strictError.
type strictWalker struct {
	dec  *json.Decoder
	body []byte
	off  int64 // where the last token ended
	// msg and member are the first problem found; stop is set by it or by
	// a syntax error.
	msg, member string
	stop        bool
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// token reads the next token and the raw bytes it came from (with any
// separator before it).
func (w *strictWalker) token() (json.Token, []byte, bool) {
	tok, err := w.dec.Token()
	if err != nil {
		w.stop = true
		return nil, nil, false
	}
	start := w.off
	w.off = w.dec.InputOffset()
	return tok, w.body[start:w.off], true
}

// fail records the first problem.
func (w *strictWalker) fail(member, msg string) {
	if !w.stop {
		w.stop, w.member = true, member
		if member == "" {
			w.msg = msg
		} else {
			w.msg = member + ": " + msg
		}
	}
}

// value reads one value that decodes into t (nil: any, unchecked) at path.
func (w *strictWalker) value(t reflect.Type, path string) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && reflect.PointerTo(t).Implements(unmarshalerType) {
		w.opaque(path)
		return
	}
	tok, raw, ok := w.token()
	if !ok {
		return
	}
	switch tok := tok.(type) {
	case nil:
		w.null(path)
	case string:
		if bad := badString(raw); bad != "" {
			w.fail(path, bad)
		}
	case json.Delim:
		if tok == '{' {
			w.object(t, path)
		} else if tok == '[' {
			w.array(t, path)
		}
	}
}

// null refuses null at path.
func (w *strictWalker) null(path string) {
	switch {
	case path == "":
		w.fail("", "the request body must be a JSON object, not null")
	case strings.HasSuffix(path, "]"):
		w.fail(path, "null is not allowed here")
	default:
		w.fail(path, "null is not allowed; omit the member for its default")
	}
}

// opaque reads a value that decodes itself (such as the bingo card): in one
// piece, which is cheaper than token by token, leaving its shape, nulls
// inside included, to its decoder, which can say what it wanted instead.
// Only its text is checked.
func (w *strictWalker) opaque(path string) {
	var raw json.RawMessage
	if err := w.dec.Decode(&raw); err != nil {
		w.stop = true
		return
	}
	w.off = w.dec.InputOffset()
	switch {
	case string(raw) == "null":
		w.null(path)
	case !utf8.Valid(raw):
		w.fail(path, "invalid UTF-8")
	default:
		if bad := badEscapes(raw); bad != "" {
			w.fail(path, bad)
		}
	}
}

// object reads the members of an object up to its closing brace.
func (w *strictWalker) object(t reflect.Type, path string) {
	var fields map[string]reflect.Type
	var names []string
	elem := reflect.Type(nil)
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields, names = jsonFields(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	var seen []string
	for !w.stop && w.dec.More() {
		tok, raw, ok := w.token()
		if !ok {
			return
		}
		name, _ := tok.(string)
		at := join(path, name)
		if bad := badString(raw); bad != "" {
			w.fail(path, "a member name: "+bad)
			return
		}
		for _, s := range seen {
			switch {
			case s == name:
				w.fail(at, "duplicate member")
				return
			case strings.EqualFold(s, name):
				w.fail(at, "duplicate member: "+strconv.Quote(s)+" differs only in letter case")
				return
			}
		}
		if len(seen) < 64 { // bounded: past that only the decoder's own checks
			seen = append(seen, name)
		}
		vt := elem
		if fields != nil {
			ft, known := fields[name]
			if !known {
				w.fail(at, unknownMember(name, names))
				return
			}
			vt = ft
		}
		w.value(vt, at)
	}
	if !w.stop {
		w.token() // }
	}
}

// array reads the elements of an array up to its closing bracket.
func (w *strictWalker) array(t reflect.Type, path string) {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	for i := 0; !w.stop && w.dec.More(); i++ {
		w.value(elem, path+"["+strconv.Itoa(i)+"]")
	}
	if !w.stop {
		w.token() // ]
	}
}

// join names member name of the object at path, shortened and quoted when
// it is not a plain name.
func join(path, name string) string {
	if !plainName(name) {
		name = QuoteShort(name)
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// plainName reports whether name can stand unquoted in a message: short,
// of letters, digits, '_' and '-'.
func plainName(name string) bool {
	if name == "" || len(name) > MaxEcho {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// unknownMember says that name is none of names, and which one it is in
// another letter case.
func unknownMember(name string, names []string) string {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return "unknown member; member names are case-sensitive: did you mean " + strconv.Quote(n) + "?"
		}
	}
	return "unknown member (want " + orList(names) + ")"
}

// orList writes names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// structFields caches jsonFields by type: request types are few, and
// reflecting on them every request would cost a dozen allocations.
var structFields sync.Map // reflect.Type → structMembers

type structMembers struct {
	types map[string]reflect.Type
	names []string
}

// jsonFields are the members a struct decodes, by their JSON names, with
// their types, and the names in the struct's order.
func jsonFields(t reflect.Type) (map[string]reflect.Type, []string) {
	if m, ok := structFields.Load(t); ok {
		return m.(structMembers).types, m.(structMembers).names
	}
	out := map[string]reflect.Type{}
	var names []string
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
		names = append(names, name)
	}
	structFields.Store(t, structMembers{out, names})
	return out, names
}

// fieldNames are the members a struct (or a pointer to one) decodes, as
// "a, b or c".
func fieldNames(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return "no other"
	}
	_, names := jsonFields(t)
	return orList(names)
}

// badString says what is wrong with the JSON string that raw ends with
// (raw may start with a separator): invalid UTF-8, raw or as an escaped
// lone surrogate; "" if nothing.
func badString(raw []byte) string {
	i := bytes.IndexByte(raw, '"')
	if i < 0 {
		return ""
	}
	if !utf8.Valid(raw[i:]) {
		return "invalid UTF-8"
	}
	return badEscapes(raw[i:])
}

// badEscapes finds an escaped lone surrogate in the well-formed JSON text
// s, where a backslash can only be in a string.
func badEscapes(s []byte) string {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		i++
		if i >= len(s) || s[i] != 'u' {
			continue
		}
		r, ok := hex4(s[i+1:])
		if !ok {
			continue // the decoder refuses it
		}
		i += 4
		lone := "invalid UTF-8: the escape \\u" + string(s[i-3:i+1]) + " is a lone surrogate"
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return lone
		case r >= 0xD800 && r <= 0xDBFF:
			if len(s) < i+7 || s[i+1] != '\\' || s[i+2] != 'u' {
				return lone
			}
			if lo, ok := hex4(s[i+3:]); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return lone
			}
			i += 6
		}
	}
	return ""
}

// hex4 parses the 4 hex digits b starts with.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	return rune(n), err == nil
}
