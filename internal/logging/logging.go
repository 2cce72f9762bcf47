package logging

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/keygate/keygate/apikey/keyformat"
)

// LevelNotice is Cloud Logging's NOTICE severity, between INFO and WARNING:
// keygate's audit entries use it.
const LevelNotice = slog.Level(2)

// Cloud Logging's special fields for trace correlation.
const (
	traceKey        = "logging.googleapis.com/trace"
	spanKey         = "logging.googleapis.com/spanId"
	traceSampledKey = "logging.googleapis.com/trace_sampled"
)

// NewLogger returns a logger that writes one JSON object a line to w with
// Cloud Logging's field names: "severity" (DEBUG, INFO, NOTICE, WARNING,
// ERROR), "message" and "time". Cloud Run functions turn such lines on
// stdout into structured log entries.
//
// Every string it writes, the message, attribute keys and values at any
// depth of groups, errors' texts and values written as JSON, goes through
// RedactKeys: the logger itself keeps keys out of the logs, so that no call
// site can forget to (a key pasted into a path is logged with the path).
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			a = cloudField(groups, a)
			a.Key = RedactKeys(a.Key)
			a.Value = redactValue(a.Value)
			return a
		},
	}))
}

// cloudField gives the handler's built-in fields Cloud Logging's names. A
// caller's own top-level attribute may have a built-in's key ("level"): it
// is told apart by its value's type, and passes as it is.
func cloudField(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 {
		switch a.Key {
		case slog.LevelKey:
			if l, ok := a.Value.Any().(slog.Level); ok {
				return slog.String("severity", severity(l))
			}
		case slog.MessageKey:
			a.Key = "message"
		}
	}
	return a
}

// redactValue is v with the keys in its text redacted. The handler has
// resolved LogValuers and walks groups itself; other kinds hold no text.
func redactValue(v slog.Value) slog.Value {
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); strings.IndexByte(s, '_') >= 0 {
			return slog.StringValue(RedactKeys(s))
		}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case json.Marshaler:
			// The handler would marshal it: marshal it here instead.
		case error:
			return slog.StringValue(RedactKeys(x.Error()))
		}
		// What the handler would write, redacted. A match is made of
		// letters, digits and '_', so it never spans JSON syntax and the
		// result stays valid JSON.
		b, err := json.Marshal(v.Any())
		if err != nil {
			return v // the handler writes its own error text
		}
		if r := RedactKeys(string(b)); r != string(b) {
			return slog.AnyValue(json.RawMessage(r))
		}
	}
	return v
}

// Key redaction. A key-shaped run is 1 to 16 lowercase letters or digits,
// '_', and at least minRedactedBody base62 characters: any prefix, since a
// caller may paste a key of another service or configuration, and at least
// a whole 43-character body, since a key cut short or with characters
// appended still holds its secret. Shorter runs pass: they are not keys,
// and a 64-digit key ID (which is logged) has no '_' before it.
const (
	minRedactedBody = keyformat.BodyLen
	// redactedMark replaces a key-shaped run that is not exactly a key's
	// length: its first and last characters need not be a hint's.
	redactedMark = "[redacted]"
)

// RedactKeys returns s with every key-shaped run replaced: a run exactly as
// long as a key by its hint (KeyHint: the prefix and 8 of its characters,
// which name the key without revealing it), any other by its prefix, '_'
// and redactedMark. Runs are found left to right, without overlapping, the
// prefix as long as it can be: what regexp.ReplaceAllStringFunc does with
// `[a-z0-9]{1,16}_[0-9A-Za-z]{43,}`, which the tests check it against. A
// string without '_' costs one IndexByte and is returned as it is.
func RedactKeys(s string) string {
	var b []byte // s with the runs redacted so far, up to done
	done := 0
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '_')
		if j < 0 {
			break
		}
		us := i + j
		i = us + 1
		end := i
		for end < len(s) && keyformat.IsBase62(s[end]) {
			end++
		}
		if end-i < minRedactedBody {
			continue
		}
		start := us
		for start > done && us-start < keyformat.MaxPrefixLen && isPrefixByte(s[start-1]) {
			start--
		}
		if start == us {
			i = end // no prefix: no run can start in this body
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(s))
		}
		b = append(b, s[done:start]...)
		if end-start == len(s[start:us])+1+keyformat.BodyLen+keyformat.ChecksumLen {
			b = append(b, keyformat.Hint(s[start:end])...)
		} else {
			b = append(b, s[start:i]...)
			b = append(b, redactedMark...)
		}
		done, i = end, end
	}
	if b == nil {
		return s
	}
	return string(append(b, s[done:]...))
}

// isPrefixByte reports whether c can be in a key prefix.
func isPrefixByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// severity names level as Cloud Logging does.
func severity(level slog.Level) string {
	switch {
	case level < slog.LevelInfo:
		return "DEBUG"
	case level < LevelNotice:
		return "INFO"
	case level < slog.LevelWarn:
		return "NOTICE"
	case level < slog.LevelError:
		return "WARNING"
	}
	return "ERROR"
}

// RequestAttrs returns the attributes that place a log entry of r: its trace
// (when project is known and r carries X-Cloud-Trace-Context or
// traceparent), method, path and client address (as from says).
func RequestAttrs(r *http.Request, project string, from ClientAddress) []slog.Attr {
	attrs := make([]slog.Attr, 0, 6)
	if project != "" {
		if trace, span, sampled, ok := traceOf(r.Header); ok {
			attrs = append(attrs, slog.String(traceKey, "projects/"+project+"/traces/"+trace))
			if span != "" {
				attrs = append(attrs, slog.String(spanKey, span))
			}
			attrs = append(attrs, slog.Bool(traceSampledKey, sampled))
		}
	}
	return append(attrs,
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("client_ip", ClientIP(r, from)))
}

// traceOf reads the trace and span IDs from a W3C traceparent header or,
// failing that, Google's X-Cloud-Trace-Context ("TRACE/SPAN;o=1", with a
// decimal span ID). The span is returned as 16 hex digits.
func traceOf(h http.Header) (trace, span string, sampled, ok bool) {
	if tp := h.Get("Traceparent"); tp != "" {
		// version-traceid-parentid-flags
		parts := strings.Split(tp, "-")
		if len(parts) == 4 && len(parts[0]) == 2 && isHex(parts[1], 32) && isHex(parts[2], 16) && isHex(parts[3], 2) {
			flags, _ := strconv.ParseUint(parts[3], 16, 8)
			return parts[1], parts[2], flags&1 == 1, true
		}
	}
	if xc := h.Get("X-Cloud-Trace-Context"); xc != "" {
		rest, opts, _ := strings.Cut(xc, ";")
		trace, spanDec, _ := strings.Cut(rest, "/")
		if !isHex(strings.ToLower(trace), 32) {
			return "", "", false, false
		}
		if n, err := strconv.ParseUint(spanDec, 10, 64); err == nil && n != 0 {
			span = strconv.FormatUint(n, 16)
			span = strings.Repeat("0", 16-len(span)) + span
		}
		return strings.ToLower(trace), span, opts == "o=1", true
	}
	return "", "", false, false
}

// isHex reports whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// LogRequest writes one entry about r at level, with r's attributes first.
func LogRequest(ctx context.Context, log *slog.Logger, level slog.Level, r *http.Request, project string, from ClientAddress, msg string, attrs ...slog.Attr) {
	if !log.Enabled(ctx, level) {
		return
	}
	log.LogAttrs(ctx, level, msg, append(RequestAttrs(r, project, from), attrs...)...)
}
