package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/internal/testkit/leak"
)

// testLogger returns NewLogger writing to a buffer. (testkit.Logger is the
// same, but testkit imports this package.)
func testLogger() (*slog.Logger, *bytes.Buffer) {
	buf := &bytes.Buffer{}
	return NewLogger(buf), buf
}

// redactReference is RedactKeys as a regular expression: what RedactKeys
// must do, written so that it is obviously right.
var redactReference = regexp.MustCompile(`[a-z0-9]{1,16}_[0-9A-Za-z]{43,}`)

func redactByRegexp(s string) string {
	return redactReference.ReplaceAllStringFunc(s, func(m string) string {
		prefix, body, _ := strings.Cut(m, "_")
		if len(body) == keyformat.BodyLen+keyformat.ChecksumLen {
			return keyformat.Hint(m)
		}
		return prefix + "_" + redactedMark
	})
}

func TestRedactKeys(t *testing.T) {
	const key = "kg_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf4DqIjo" // README's first vector
	const hint = "kg_003a…qIjo"
	body := key[3:]
	cases := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"no underscore", "/v1/bingo/check", "/v1/bingo/check"},
		{"snake case", "insufficient_scope", "insufficient_scope"},
		{"key alone", key, hint},
		{"key at start", key + "/rotate", hint + "/rotate"},
		{"key at end", "/v1/keys/" + key, "/v1/keys/" + hint},
		{"key in the middle", "DELETE /v1/keys/" + key + "/rotate failed", "DELETE /v1/keys/" + hint + "/rotate failed"},
		{"two keys", key + "," + key, hint + "," + hint},
		{"two keys glued by _", key + "_" + key, hint + "_" + hint},
		{"a body glued by _", key + "_" + body, hint + "_" + body}, // no prefix of its own: not key-shaped
		{"key in a query", "key=" + key + "&x=1", "key=" + hint + "&x=1"},
		{"bad checksum", key[:len(key)-1] + "p", "kg_003a…qIjp"},
		{"other prefix", "zz9_" + body, "zz9_003a…qIjo"},
		{"longest prefix", "abcdefghijklmnop_" + body, "abcdefghijklmnop_003a…qIjo"},
		{"prefix too long: the run starts 16 before the _", "xabcdefghijklmnop_" + body, "xabcdefghijklmnop_003a…qIjo"},
		{"upper-case letters before the prefix", "KEYkg_" + body, "KEYkg_003a…qIjo"},
		{"no prefix", "_" + body, "_" + body},
		{"prefix is not lowercase", "KG_" + body, "KG_" + body},
		{"48-character body", key[:len(key)-1], "kg_" + redactedMark},
		{"43-character body: a whole secret", key[:3+43], "kg_" + redactedMark},
		{"42-character body", key[:3+42], key[:3+42]},
		{"50-character body", key + "Z", "kg_" + redactedMark},
		{"100-character body", key + body + "xx", "kg_" + redactedMark},
		{"broken by a character", key[:20] + "!" + key[21:], key[:20] + "!" + key[21:]},
		{"URL-escaped _", "kg%5F" + body, "kg%5F" + body},
		{"prefix-like text", "api_keys/cdef46ad8c1926f1e2efa9fa637bd48d870cffb86ac984055520ce1d20d5ae7c", "api_keys/cdef46ad8c1926f1e2efa9fa637bd48d870cffb86ac984055520ce1d20d5ae7c"},
		{"key ID after an underscore", "key_cdef46ad8c1926f1e2efa9fa637bd48d870cffb86ac984055520ce1d20d5ae7c", "key_" + redactedMark},
		{"non-ASCII around", "é" + key + "…", "é" + hint + "…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := RedactKeys(c.in); got != c.want {
				t.Errorf("RedactKeys(%q)\n = %q\nwant %q", c.in, got, c.want)
			}
			if ref := redactByRegexp(c.in); ref != c.want {
				t.Errorf("the reference gives %q; the case is wrong", ref)
			}
		})
	}
}

func FuzzRedactKeys(f *testing.F) {
	key := "kg_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf4DqIjo"
	for _, s := range []string{"", "a_b", key, "/v1/keys/" + key, key + key, key + "_" + key,
		"xabcdefghijklmnopq_" + key[3:], key[:46], key + "Z", "kg__" + key[3:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := RedactKeys(s), redactByRegexp(s); got != want {
			t.Errorf("RedactKeys(%q)\n = %q\nwant %q", s, got, want)
		}
	})
}

// testValuer is a LogValuer whose value holds a key.
type testValuer struct{ key string }

func (v testValuer) LogValue() slog.Value { return slog.StringValue("valuer " + v.key) }

// keyFields are fields of every kind a JSON handler writes, each holding key.
func keyFields(key string) []slog.Attr {
	return []slog.Attr{
		slog.String("path", "/v1/keys/"+key),
		slog.String(key, "as an attribute key"),
		slog.Any("error", fmt.Errorf("store: %s not found", key)),
		slog.Group("nested", slog.Group("deeper", slog.String("s", key))),
		slog.Any("list", []string{"a", key}),
		slog.Any("struct", struct{ Key string }{key}),
		slog.Any("valuer", testValuer{key}),
		slog.Any("raw", json.RawMessage(`"`+key+`"`)),
	}
}

// wantRedacted fails t unless logs are one JSON object that holds no piece
// of key (leak.In).
func wantRedacted(t *testing.T, logs, key string) {
	t.Helper()
	if chunk, _ := leak.In(logs, map[string]string{"": key}); chunk != "" {
		t.Fatalf("logs hold %q of the key:\n%s", chunk, logs)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(logs), &entry); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, logs)
	}
}

// TestLoggerRedactsEveryField logs a key in every kind of field the JSON
// handler writes and finds only its hint.
func TestLoggerRedactsEveryField(t *testing.T) {
	key, _ := keyformat.New("kg")
	log, buf := testLogger()
	log = log.With(slog.String("with", "w "+key)).WithGroup("g")
	log.LogAttrs(t.Context(), slog.LevelWarn, "message "+key, keyFields(key)...)
	logs := buf.String()
	wantRedacted(t, logs, key)
	hint := keyformat.Hint(key)
	for _, want := range []string{`"message":"message ` + hint, `"path":"/v1/keys/` + hint, `"` + hint + `":"as an attribute key"`,
		`"error":"store: ` + hint, `"s":"` + hint, `["a","` + hint + `"]`, `{"Key":"` + hint, `"valuer":"valuer ` + hint,
		`"raw":"` + hint, `"with":"w ` + hint} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// groupValuer is a LogValuer whose value is a group that holds a key.
type groupValuer struct{ key string }

func (v groupValuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("inner", v.key), slog.Int("n", 1))
}

// TestRedacting logs a key in every kind of field through Redacting in
// front of a plain JSON handler, as a library user's logger is wrapped,
// and finds only its hint; the handler's own format, level and fields are
// otherwise unchanged.
func TestRedacting(t *testing.T) {
	key, _ := keyformat.New("kg")
	hint := keyformat.Hint(key)
	noTime := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	var buf bytes.Buffer
	log := slog.New(Redacting(slog.NewJSONHandler(&buf, noTime)))
	if log.Enabled(t.Context(), slog.LevelDebug) || !log.Enabled(t.Context(), slog.LevelInfo) {
		t.Error("Redacting does not pass its handler's level through")
	}
	log.Debug("debug " + key)
	if buf.Len() != 0 {
		t.Errorf("a DEBUG entry below the handler's level was written: %s", buf.String())
	}

	log.With(slog.String("with", "w "+key), slog.Group("wg", slog.String("s", key))).WithGroup(key).LogAttrs(t.Context(), slog.LevelWarn, "message "+key,
		append(keyFields(key), slog.Any("group valuer", groupValuer{key}), slog.String("reason", "unknown_key"), slog.Int("n", 7))...)
	logs := buf.String()
	wantRedacted(t, logs, key)
	for _, want := range []string{`"level":"WARN"`, `"msg":"message ` + hint, `"with":"w ` + hint, `"wg":{"s":"` + hint + `"}`,
		`"` + hint + `":{"path":"/v1/keys/` + hint, `"` + hint + `":"as an attribute key"`, `"error":"store: ` + hint,
		`"nested":{"deeper":{"s":"` + hint + `"}}`, `["a","` + hint + `"]`, `{"Key":"` + hint, `"valuer":"valuer ` + hint,
		`"group valuer":{"inner":"` + hint + `","n":1}`, `"raw":"` + hint, `"reason":"unknown_key"`, `"n":7`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}

	// Without a key, the entry is the handler's own, byte for byte.
	var plain bytes.Buffer
	buf.Reset()
	for _, l := range []*slog.Logger{log, slog.New(slog.NewJSONHandler(&plain, noTime))} {
		l.With("a", "b_c").WithGroup("g").Info("no key here", slog.String("path", "/v1/keys/cdef46ad"), slog.Any("err", fmt.Errorf("x")), slog.Float64("f", 1.5))
	}
	if buf.String() != plain.String() {
		t.Errorf("Redacting changed an entry without a key:\n%s\nwant\n%s", buf.String(), plain.String())
	}
}

// TestRequestAttrs checks the attributes that place an entry: the trace
// and span in Cloud Logging's fields (only with a project), the method,
// the path and the client address.
func TestRequestAttrs(t *testing.T) {
	cases := []struct {
		name, header, value, wantTrace, wantSpan string
		wantSampled                              bool
		project                                  string
	}{
		{"cloud trace context", "X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1", "projects/p1/traces/105445aa7843bc8bf206b12000100000", "0000000000000001", true, "p1"},
		{"cloud trace context, not sampled", "X-Cloud-Trace-Context", "105445AA7843BC8BF206B12000100000/255", "projects/p1/traces/105445aa7843bc8bf206b12000100000", "00000000000000ff", false, "p1"},
		{"traceparent", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "projects/p1/traces/0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", true, "p1"},
		{"no project", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "", "", false, ""},
		{"bad trace", "X-Cloud-Trace-Context", "nonsense", "", "", false, "p1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/bingo/check", nil)
			r.Header.Set(c.header, c.value)
			r.Header.Set("X-Forwarded-For", "10.0.0.1, 203.0.113.9")
			got := map[string]slog.Value{}
			for _, a := range RequestAttrs(r, c.project, CloudRun) {
				got[a.Key] = a.Value
			}
			if c.wantTrace == "" {
				for _, k := range []string{traceKey, spanKey, traceSampledKey} {
					if v, ok := got[k]; ok {
						t.Errorf("%s = %v, want none", k, v)
					}
				}
			} else if got[traceKey].String() != c.wantTrace || got[spanKey].String() != c.wantSpan || got[traceSampledKey].Bool() != c.wantSampled {
				t.Errorf("trace, span, sampled = %v, %v, %v; want %s, %s, %v", got[traceKey], got[spanKey], got[traceSampledKey], c.wantTrace, c.wantSpan, c.wantSampled)
			}
			if got["method"].String() != "POST" || got["path"].String() != "/v1/bingo/check" || got["client_ip"].String() != "203.0.113.9" {
				t.Errorf("method, path, client_ip = %v, %v, %v", got["method"], got["path"], got["client_ip"])
			}
		})
	}
}

// TestLoggerCloudFields checks NewLogger's field names and severities:
// Cloud Logging's, from INFO up (DEBUG is not written). A caller's own
// attribute named like a built-in field ("level") is kept as it is: it
// once made the logger panic.
func TestLoggerCloudFields(t *testing.T) {
	log, buf := testLogger()
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, LevelNotice, slog.LevelWarn, slog.LevelError, slog.LevelError + 4} {
		log.Log(t.Context(), l, "entry", slog.Int("level", int(l)))
	}
	var got []string
	for line := range strings.Lines(buf.String()) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e["message"] != "entry" || e["time"] == nil || e["msg"] != nil {
			t.Errorf("entry %v lacks Cloud Logging's fields", e)
		}
		if _, ok := e["level"].(float64); !ok {
			t.Errorf("entry %v lost the caller's level attribute", e)
		}
		got = append(got, e["severity"].(string))
	}
	if want := []string{"INFO", "NOTICE", "WARNING", "ERROR", "ERROR"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("severities %v, want %v", got, want)
	}
	if severity(slog.LevelDebug) != "DEBUG" {
		t.Errorf("severity(DEBUG) = %s", severity(slog.LevelDebug))
	}
}

// BenchmarkRedactKeys measures the scan every logged string goes through.
func BenchmarkRedactKeys(b *testing.B) {
	key := "kg_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf4DqIjo"
	for _, c := range []struct{ name, s string }{
		{"no underscore", "/v1/keys/cdef46ad8c1926f1e2efa9fa637bd48d870cffb86ac984055520ce1d20d5ae7c"},
		{"underscore, no key", "key store unavailable: serving a stale cached key (insufficient_scope, store_unavailable)"},
		{"key", "/v1/keys/" + key},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				RedactKeys(c.s)
			}
		})
	}
}

// BenchmarkLogRefusal is one refusal's log entry, the most frequent entry
// under attack, with and without the redaction (Cloud Logging's field names
// in both).
func BenchmarkLogRefusal(b *testing.B) {
	r := httptest.NewRequest("GET", "/v1/bingo/check", nil)
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	for _, c := range []struct {
		name string
		log  *slog.Logger
	}{
		{"redacting", NewLogger(io.Discard)},
		{"not redacting", slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{ReplaceAttr: cloudField}))},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				LogRequest(r.Context(), c.log, slog.LevelWarn, r, "p1", CloudRun, "request refused",
					slog.String("reason", "unknown_key"), slog.String("key_hint", "kg_003a…qIjo"))
			}
		})
	}
}

// TestRedactingTextHandler checks that a caller's text handler, which
// prints values as fmt does, gets no key from a []byte or an unexported
// field, which JSON would not show.
func TestRedactingTextHandler(t *testing.T) {
	key := "kg_" + strings.Repeat("A", 43) + "000000"
	var buf strings.Builder
	log := slog.New(Redacting(slog.NewTextHandler(&buf, nil)))
	type secret struct{ k string }
	log.Info("m", slog.Any("bytes", []byte("x "+key)), slog.Any("struct", secret{key}))
	if strings.Contains(buf.String(), strings.Repeat("A", 12)) {
		t.Errorf("the text handler received a key: %s", buf.String())
	}
}
