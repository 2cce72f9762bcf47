package keygate

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
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
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				return slog.String("severity", severity(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				a.Key = "message"
			}
			return a
		},
	}))
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

// requestAttrs returns the attributes that place a log entry of r: its trace
// (when project is known and r carries X-Cloud-Trace-Context or
// traceparent), method, path and client address.
func requestAttrs(r *http.Request, project string) []slog.Attr {
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
		slog.String("client_ip", clientIP(r)))
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

// clientIP is the caller's address: the last X-Forwarded-For entry, which is
// the one Google's front end appends (earlier entries are whatever the
// client sent), else the connection's peer.
func clientIP(r *http.Request) string {
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		last := xff[len(xff)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if ip := strings.TrimSpace(last); net.ParseIP(ip) != nil {
			return ip
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// logRequest writes one entry about r at level, with r's attributes first.
func logRequest(ctx context.Context, log *slog.Logger, level slog.Level, r *http.Request, project, msg string, attrs ...slog.Attr) {
	if !log.Enabled(ctx, level) {
		return
	}
	log.LogAttrs(ctx, level, msg, append(requestAttrs(r, project), attrs...)...)
}
