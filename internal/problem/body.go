package problem

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes is the largest request body any endpoint reads: 64 KiB.
const MaxBodyBytes = 64 << 10

// IsJSONMediaType reports whether a Content-Type header value is
// application/json, in any letter case and with any parameters.
func IsJSONMediaType(ct string) bool {
	if ct == "application/json" { // the common case, without allocating
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// ReadJSON checks that r's body is application/json (else 415, with
// Accept-Post) and reads it whole, so that any body over MaxBodyBytes is
// refused with 413 whatever its content.
func ReadJSON(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	if !IsJSONMediaType(r.Header.Get("Content-Type")) {
		w.Header().Set("Accept-Post", "application/json")
		return nil, New(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"The request body must be application/json.")
	}
	tooLarge := func() *Problem {
		return New(http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
			"The request body is larger than "+strconv.Itoa(MaxBodyBytes)+" bytes.")
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge()
	}
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, tooLarge()
		}
		p := New(http.StatusBadRequest, CodeInvalidJSON, "The request body could not be read.")
		p.Errors = []string{"body: read failed"}
		return nil, p
	}
	return body, nil
}

// DecodeObject decodes body, which must hold exactly one JSON object of
// dst's members, into dst: the one decoder of every endpoint's body. It is
// strict where encoding/json is lenient (see strictError): a member twice or
// in another letter case, an unknown member, invalid UTF-8 (raw or an
// escaped lone surrogate) and null are refused. Any failure is a 400
// invalid_json problem that says what is wrong and where, and names the
// member in Member; what names the object for its detail, such as "bingo
// request". An error from a field's own UnmarshalJSON is its message as it
// stands.
func DecodeObject(body []byte, dst any, what string) *Problem {
	msg, member := strictError(body, reflect.TypeOf(dst))
	if msg == "" {
		msg, member = jsonDecodeError(body, dst)
	}
	if msg == "" {
		return nil
	}
	p := New(http.StatusBadRequest, CodeInvalidJSON, "The request body is not a valid JSON "+what+": "+msg+".")
	p.Errors = []string{msg}
	p.Member = member
	return p
}

// jsonDecodeError decodes body into dst and returns what is wrong and the
// member it is in, or "".
func jsonDecodeError(body []byte, dst any) (msg, member string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		rest := body[dec.InputOffset():]
		if i := len(rest) - len(bytes.TrimLeft(rest, " \t\r\n")); i < len(rest) {
			return fmt.Sprintf("unexpected data after the JSON object at byte offset %d", len(body)-len(rest)+i), ""
		}
		return "", ""
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "the request body is empty; want a JSON object", ""
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the request body ends in the middle of a JSON value", ""
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("invalid JSON at byte offset %d: %s", syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "json: ")), ""
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return "the request body must be a JSON object, not " + JSONValueName(typeErr.Value), ""
		}
		return Shorten(typeErr.Field) + ": unexpected " + JSONValueName(typeErr.Value), Shorten(typeErr.Field)
	}
	// DisallowUnknownFields reports an unknown field only as an error string.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if s, uerr := strconv.Unquote(name); uerr == nil {
			name = QuoteShort(s)
		}
		return "unknown field " + name + " (want " + fieldNames(reflect.TypeOf(dst)) + ")", ""
	}
	return err.Error(), ""
}

// InvalidField is the 400 problem with the given code for a bad field.
func InvalidField[C ~string](code C, field, msg string) *Problem {
	p := New(http.StatusBadRequest, code, field+": "+msg+".")
	p.Errors = []string{field + ": " + msg}
	return p
}

// MaxEcho caps, in bytes, how much of a client-supplied string is quoted
// back in an error message.
const MaxEcho = 40

// Shorten cuts s to at most MaxEcho bytes, marking the cut with "...", so
// that a long value cannot bloat an error message.
func Shorten(s string) string {
	if len(s) <= MaxEcho {
		return s
	}
	cut := MaxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// QuoteShort quotes s for an error message, shortened by Shorten.
func QuoteShort(s string) string {
	if t := Shorten(s); len(t) < len(s) {
		return strconv.Quote(t[:len(t)-len("...")]) + "..."
	}
	return strconv.Quote(s)
}

// JSONValueName describes the Value of a json.UnmarshalTypeError, such as
// "a string" or "the number 1.5".
func JSONValueName(v string) string {
	switch {
	case v == "number":
		return "a number"
	case strings.HasPrefix(v, "number "):
		return "the number " + Shorten(v[len("number "):])
	case v == "object", v == "array":
		return "an " + v
	case v == "bool":
		return "a boolean"
	}
	return "a " + v
}
