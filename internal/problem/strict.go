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

// strictError scans body alongside the Go type it is decoded into and
// returns the first thing encoding/json would accept but read ambiguously
// or lossily, with the member it is in; "" when there is none, or when the
// body is not well-formed JSON (the decoder then says so):
//
//   - a member twice in one object (encoding/json keeps the last), or twice
//     in different letter case;
//   - a member the struct lacks, also one that matches a field only in
//     another letter case (encoding/json matches names case-insensitively);
//   - invalid UTF-8 in a string or a member name, raw or as an escaped lone
//     surrogate such as \ud800 (encoding/json puts U+FFFD in its place);
//   - null (encoding/json makes it the zero value, so that "scopes": null
//     would mean the default scopes): omit the member instead. Inside a
//     value that decodes itself (json.Unmarshaler), null is left to its
//     decoder, which can say what it wanted instead.
//
// It reads the bytes itself, without encoding/json's tokens, so that it
// allocates nothing on a good body: it runs before every request body is
// decoded. encoding/json/v2 refuses most of these itself, but it needs
// GOEXPERIMENT=jsonv2 in Go 1.26.
func strictError(body []byte, t reflect.Type) (msg, member string) {
	s := strictScanner{body: body}
	s.path = s.pathBuf[:0]
	s.value(t, false)
	return s.msg, s.member
}

// strictScanner is the state of strictError.
type strictScanner struct {
	body  []byte
	off   int
	depth int
	// path is where the value being scanned is: a stack, with room for the
	// usual depths without allocating.
	path    []pathElem
	pathBuf [16]pathElem
	// msg and member are the first problem found; stop is set by it, or by
	// a syntax error, which the decoder reports.
	msg, member string
	stop        bool
}

// maxStrictDepth bounds the nesting the scanner follows, as encoding/json
// bounds its own (10,000).
const maxStrictDepth = 10000

// pathElem is one step of a path: the member name of an object's value, or
// the index of an array's element.
type pathElem struct {
	name  []byte // the raw member name, escapes and all; nil for an element
	index int
}

// pathString writes a path as "scopes[1]" or "sub.a", a strange name
// quoted (and shortened, QuoteShort), the whole cut as any echo is: after
// the steps that fit in MaxEcho bytes, "..." stands for the rest, so that
// a body nested 9,000 deep is not answered with a path of 27 KB. A first
// step longer than that is a name QuoteShort has shortened already.
func pathString(path []pathElem) string {
	var b strings.Builder
	for i, e := range path {
		var step string
		switch {
		case e.name == nil:
			step = "[" + strconv.Itoa(e.index) + "]"
		default:
			name := unescapeName(e.name)
			if !plainName(name) {
				name = QuoteShort(name)
			}
			if i > 0 {
				step = "."
			}
			step += name
		}
		if i > 0 && b.Len()+len(step) > MaxEcho {
			b.WriteString("...")
			break
		}
		b.WriteString(step)
	}
	return b.String()
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// fail records the first problem, at the current path.
func (s *strictScanner) fail(msg string) {
	if s.stop {
		return
	}
	s.stop = true
	if s.member = pathString(s.path); s.member != "" {
		msg = s.member + ": " + msg
	}
	s.msg = msg
}

// syntax stops the scan at malformed JSON, which the decoder reports.
func (s *strictScanner) syntax() { s.stop = true }

func (s *strictScanner) space() {
	for s.off < len(s.body) {
		switch s.body[s.off] {
		case ' ', '\t', '\r', '\n':
			s.off++
		default:
			return
		}
	}
}

// value scans one value that decodes into t (nil: any, unchecked) at the
// current path; opaque is set inside a value that decodes itself.
func (s *strictScanner) value(t reflect.Type, opaque bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	inner := opaque
	if t != nil && reflect.PointerTo(t).Implements(unmarshalerType) {
		t, inner = nil, true
	}
	s.space()
	if s.off >= len(s.body) {
		s.syntax()
		return
	}
	if s.depth++; s.depth > maxStrictDepth {
		s.syntax()
		return
	}
	defer func() { s.depth-- }()
	switch c := s.body[s.off]; {
	case c == '{':
		s.off++
		s.object(t, inner)
	case c == '[':
		s.off++
		s.array(t, inner)
	case c == '"':
		if bad := s.str(); bad != "" {
			s.fail(bad)
		}
	case c == 'n':
		if !bytes.HasPrefix(s.body[s.off:], []byte("null")) {
			s.syntax()
			return
		}
		s.off += len("null")
		if !opaque {
			s.null()
		}
	default: // true, false, a number: the decoder checks them
		for s.off < len(s.body) && !strings.ContainsRune(" \t\r\n,]}", rune(s.body[s.off])) {
			s.off++
		}
	}
}

// null refuses null at the current path.
func (s *strictScanner) null() {
	switch {
	case len(s.path) == 0:
		s.fail("the request body must be a JSON object, not null")
	case s.path[len(s.path)-1].name == nil:
		s.fail("null is not allowed here")
	default:
		s.fail("null is not allowed; omit the member for its default")
	}
}

// object scans the members of an object after its brace.
func (s *strictScanner) object(t reflect.Type, opaque bool) {
	var fields map[string]reflect.Type
	var names []string
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields, names = jsonFields(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	var seenBuf [8][]byte // the names so far, raw; most objects fit
	seen := seenBuf[:0]
	s.space()
	if s.off < len(s.body) && s.body[s.off] == '}' {
		s.off++
		return
	}
	for !s.stop {
		s.space()
		if s.off >= len(s.body) || s.body[s.off] != '"' {
			s.syntax()
			return
		}
		start := s.off + 1
		if bad := s.str(); bad != "" || s.stop {
			s.fail("a member name: " + bad) // nothing if a syntax error stopped it
			return
		}
		raw := s.body[start : s.off-1]
		s.path = append(s.path, pathElem{name: raw})
		name := raw
		if bytes.IndexByte(raw, '\\') >= 0 {
			name = []byte(unescapeName(raw)) // rare: only then a copy
		}
		for _, prev := range seen {
			switch {
			case bytes.Equal(prev, name):
				s.fail("duplicate member")
				return
			case bytes.EqualFold(prev, name):
				s.fail("duplicate member: " + strconv.Quote(string(prev)) + " differs only in letter case")
				return
			}
		}
		if len(seen) < 64 { // bounded: past that only the decoder's checks
			seen = append(seen, name)
		}
		vt := elem
		if fields != nil {
			ft, known := fields[string(name)]
			if !known {
				s.fail(unknownMember(string(name), names))
				return
			}
			vt = ft
		}
		s.space()
		if s.off >= len(s.body) || s.body[s.off] != ':' {
			s.syntax()
			return
		}
		s.off++
		s.value(vt, opaque)
		if s.stop {
			return
		}
		s.path = s.path[:len(s.path)-1]
		if !s.more('}') {
			return
		}
	}
}

// array scans the elements of an array after its bracket.
func (s *strictScanner) array(t reflect.Type, opaque bool) {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	s.space()
	if s.off < len(s.body) && s.body[s.off] == ']' {
		s.off++
		return
	}
	for i := 0; !s.stop; i++ {
		s.path = append(s.path, pathElem{index: i})
		s.value(elem, opaque)
		if s.stop {
			return
		}
		s.path = s.path[:len(s.path)-1]
		if !s.more(']') {
			return
		}
	}
}

// str scans the string at off, its quotes included, and says what is wrong
// with it: invalid UTF-8, raw or as an escaped lone surrogate; "" if
// nothing. A string that does not end is a syntax error.
func (s *strictScanner) str() string {
	b := s.body
	i := s.off + 1
	start := i
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			s.off = i + 1
			if !utf8.Valid(b[start:i]) {
				return "invalid UTF-8"
			}
			return ""
		case c == '\\':
			if i+1 >= len(b) {
				s.syntax()
				return ""
			}
			if b[i+1] != 'u' {
				i += 2
				continue
			}
			r, ok := hex4(b[i+2:])
			if !ok {
				s.syntax()
				return ""
			}
			esc := b[i : i+6]
			i += 6
			lone := false
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				lone = true
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := rune(0), false
				if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
					lo, ok = hex4(b[i+2:])
				}
				if lone = !ok || lo < 0xDC00 || lo > 0xDFFF; !lone {
					i += 6
				}
			}
			if lone {
				s.skipString(i)
				return "invalid UTF-8: the escape " + string(esc) + " is a lone surrogate"
			}
		default:
			i++
		}
	}
	s.syntax()
	return ""
}

// skipString moves off past the string that goes on at i, for a message
// that names it after a problem found in it.
func (s *strictScanner) skipString(i int) {
	for ; i < len(s.body); i++ {
		switch s.body[i] {
		case '\\':
			i++
		case '"':
			s.off = i + 1
			return
		}
	}
	s.off = i
}

// unescapeName decodes a raw member name with escapes; invalid escapes, which
// the decoder refuses, are kept as they are.
func unescapeName(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var name string
	if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &name) != nil {
		return string(raw)
	}
	return name
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

// hex4 parses the 4 hex digits b starts with.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// more reads what follows a member or an element: a comma (true: another
// comes), or closer, which ends the object or array (false); anything else
// is a syntax error (false, s.stop set).
func (s *strictScanner) more(closer byte) bool {
	s.space()
	if s.off >= len(s.body) {
		s.syntax()
		return false
	}
	switch s.body[s.off] {
	case ',':
		s.off++
		return true
	case closer:
		s.off++
		return false
	}
	s.syntax()
	return false
}
