package logging

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/store"
)

// leakedIn returns the first 12-character piece of any of keys that logs
// holds, and the key's name; "" when there is none.
func leakedIn(logs string, keys map[string]string) (chunk, name string) {
	for name, key := range keys {
		for i := 0; i+12 <= len(key); i++ {
			if chunk := key[i : i+12]; strings.Contains(logs, chunk) {
				return chunk, name
			}
		}
	}
	return "", ""
}

// TestLogsNeverHoldAKeyAnywhere sends keys where a caller might paste them
// (the path, the query, other headers, the body) with every refusal keygate
// logs and with the audited 200s, and finds no 12-character piece of any key
// in the logs.
func TestLogsNeverHoldAKeyAnywhere(t *testing.T) {
	s := newTestServer(t)
	manager := func(k *store.Key) { k.Scopes = KnownScopes }
	valid, _ := mintTestKey(t, s.store, "acme", manager)
	revoked, _ := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.RevokedAt = t0.Add(-time.Second) })
	expired, _ := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(-time.Second) })
	narrow, _ := mintTestKey(t, s.store, "acme", func(k *store.Key) { k.Scopes = []string{ScopeBingoCheck} })
	limited, _ := mintTestKey(t, s.store, "acme", manager, func(k *store.Key) { k.RateLimit, k.Burst = 0.001, 1 })
	quota, _ := mintTestKey(t, s.store, "acme", manager, func(k *store.Key) { k.MonthlyQuota = 1 })
	uncached, _ := mintTestKey(t, s.store, "acme")
	pasted, _ := keyformat.New("kg")
	// An operator pasted a key where the owner goes: the audit entries log
	// the owner.
	careless, carelessKey := mintTestKey(t, s.store, "acme "+pasted, manager)
	unknown, _ := keyformat.New("kg")
	otherPrefix, _ := keyformat.New("zz9")
	badChecksum := valid[:len(valid)-1] + "0"
	if valid[len(valid)-1] == '0' {
		badChecksum = valid[:len(valid)-1] + "1"
	}
	if keyformat.Parse(badChecksum, "kg") == nil {
		t.Fatal("badChecksum is not malformed")
	}
	tooLong := valid + "Zz9"

	secrets := map[string]string{
		"valid": valid, "revoked": revoked, "expired": expired, "narrow": narrow,
		"limited": limited, "quota": quota, "uncached": uncached, "pasted": pasted,
		"careless": careless, "unknown": unknown, "other prefix": otherPrefix,
		"bad checksum": badChecksum, "too long": tooLong,
	}
	leaks := []string{valid, revoked, unknown, otherPrefix, badChecksum, tooLong}

	// send serves one request with leak pasted into the path (after
	// pathPrefix), the query, several headers and the body, and the given
	// X-API-Key values.
	// An empty pathPrefix sends POST /v1/keys; one ending in "?" leaves
	// leak out of the path.
	send := func(method, pathPrefix, leak string, apiKeys ...string) *httptest.ResponseRecorder {
		target := pathPrefix + leak + "?key=" + leak + "&api_key=" + url.QueryEscape("Bearer "+leak)
		switch {
		case pathPrefix == "":
			target = "/v1/keys?key=" + leak
		case strings.HasSuffix(pathPrefix, "?"):
			target = pathPrefix + "key=" + leak
		}
		r := httptest.NewRequest(method, target, strings.NewReader(`{"name":"`+leak+`"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+leak)
		r.Header.Set("Referer", "https://example.com/?key="+leak)
		r.Header.Set("User-Agent", "curl/8 "+leak)
		r.Header.Set("X-Forwarded-For", leak)
		r.Header.Set("Cookie", "key="+leak)
		for _, k := range apiKeys {
			r.Header.Add("X-API-Key", k)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}

	cases := []struct {
		name       string
		method     string
		pathPrefix string
		apiKeys    []string
		prepare    func()
		wantStatus int
		wantCode   string
	}{
		{"missing key", "DELETE", "/v1/keys/", nil, nil, 401, "missing_api_key"},
		{"malformed key", "DELETE", "/v1/keys/", []string{badChecksum}, nil, 401, "invalid_api_key"},
		{"too long key", "DELETE", "/v1/keys/", []string{tooLong}, nil, 401, "invalid_api_key"},
		{"unknown key", "DELETE", "/v1/keys/", []string{unknown}, nil, 401, "invalid_api_key"},
		{"revoked key", "DELETE", "/v1/keys/", []string{revoked}, nil, 401, "invalid_api_key"},
		{"expired key", "DELETE", "/v1/keys/", []string{expired}, nil, 401, "expired_api_key"},
		{"multiple keys", "DELETE", "/v1/keys/", []string{valid, unknown}, nil, 400, "multiple_api_keys"},
		{"insufficient scope", "DELETE", "/v1/keys/", []string{narrow}, nil, 403, "insufficient_scope"},
		{"unknown route", "GET", "/nope/", []string{valid}, nil, 404, "not_found"},
		{"wrong method", "PUT", "/v1/keys/", []string{valid}, nil, 405, "method_not_allowed"},
		{"rate limited", "DELETE", "/v1/keys/", []string{limited}, func() { send("GET", "/", "", limited) }, 429, "rate_limited"},
		{"quota exceeded", "DELETE", "/v1/keys/", []string{quota}, func() { send("GET", "/", "", quota) }, 429, "quota_exceeded"},
		{"store unavailable", "DELETE", "/v1/keys/", []string{uncached}, func() { s.store.down.Store(true) }, 503, "store_unavailable"},
		{"store call failed", "GET", "/v1/keys/" + carelessKey.ID + "?", []string{valid}, func() { s.store.down.Store(true) }, 503, "store_unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, leak := range leaks {
				s.store.down.Store(false)
				if c.prepare != nil {
					c.prepare()
				}
				w := send(c.method, c.pathPrefix, leak, c.apiKeys...)
				if w.Code != c.wantStatus {
					t.Fatalf("status %d, want %d: %s", w.Code, c.wantStatus, w.Body)
				}
				if p := problemOf(t, w); p.Code != c.wantCode {
					t.Fatalf("code %s, want %s", p.Code, c.wantCode)
				}
			}
			s.store.down.Store(false)
		})
	}

	// The audited 200s: a key minted and rotated by a careless owner, with
	// keys pasted everywhere.
	for _, leak := range leaks {
		w := send("POST", "", leak, careless)
		if w.Code != http.StatusCreated {
			t.Fatalf("POST /v1/keys = %d %s", w.Code, w.Body)
		}
		var minted NewKeyView
		if err := json.Unmarshal(w.Body.Bytes(), &minted); err != nil {
			t.Fatal(err)
		}
		secrets["minted "+minted.ID] = minted.Key
		w = send("POST", "/v1/keys/"+minted.ID+"/rotate/", leak, careless)
		if w.Code != http.StatusNotFound { // the pasted key makes the path unknown
			t.Fatalf("rotate with a pasted key = %d %s", w.Code, w.Body)
		}
		r := httptest.NewRequest("POST", "/v1/keys/"+minted.ID+"/rotate?key="+leak, nil)
		r.Header.Set("X-API-Key", careless)
		r.Header.Set("Referer", leak)
		rw := httptest.NewRecorder()
		s.ServeHTTP(rw, r)
		if rw.Code != http.StatusCreated {
			t.Fatalf("rotate = %d %s", rw.Code, rw.Body)
		}
		var rotated RotatedKeyView
		if err := json.Unmarshal(rw.Body.Bytes(), &rotated); err != nil {
			t.Fatal(err)
		}
		secrets["rotated "+rotated.ID] = rotated.Key
	}

	logs := s.logs.String()
	if chunk, name := leakedIn(logs, secrets); chunk != "" {
		t.Fatalf("logs hold %q of the %s key:\n%s", chunk, name, logs)
	}
	for _, want := range []string{
		`"reason":"missing_api_key"`, `"reason":"malformed_key"`, `"reason":"unknown_key"`,
		`"reason":"revoked_key"`, `"reason":"expired_key"`, `"reason":"multiple_api_keys"`,
		`"reason":"insufficient_scope"`, `"reason":"rate_limited"`, `"reason":"quota_exceeded"`,
		`"reason":"store_unavailable"`, `"message":"audit: key create"`, `"message":"audit: key rotate"`,
		// A pasted key is logged as its hint, so that it can be recognised.
		`"path":"/v1/keys/` + keyformat.Hint(valid) + `"`,
		`"owner":"acme ` + keyformat.Hint(pasted) + `"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// redactReference is RedactKeys as a regular expression: what RedactKeys
// must do, written so that it is obviously right.
var redactReference = regexp.MustCompile(`[a-z0-9]{1,16}_[0-9A-Za-z]{43,}`)

func redactByRegexp(s string) string {
	return redactReference.ReplaceAllStringFunc(s, func(m string) string {
		prefix, body, _ := strings.Cut(m, "_")
		if len(body) == bodyLen+checksumLen {
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

// TestLoggerRedactsEveryField logs a key in every kind of field the JSON
// handler writes and finds only its hint.
func TestLoggerRedactsEveryField(t *testing.T) {
	key, _ := keyformat.New("kg")
	log, buf := testLogger()
	log = log.With(slog.String("with", "w "+key)).WithGroup("g")
	log.LogAttrs(t.Context(), slog.LevelWarn, "message "+key,
		slog.String("path", "/v1/keys/"+key),
		slog.String(key, "as an attribute key"),
		slog.Any("error", fmt.Errorf("store: %s not found", key)),
		slog.Group("nested", slog.Group("deeper", slog.String("s", key))),
		slog.Any("list", []string{"a", key}),
		slog.Any("struct", struct{ Key string }{key}),
		slog.Any("valuer", testValuer{key}),
		slog.Any("raw", json.RawMessage(`"`+key+`"`)))
	logs := buf.String()
	if chunk, _ := leakedIn(logs, map[string]string{"": key}); chunk != "" {
		t.Fatalf("logs hold %q of the key:\n%s", chunk, logs)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(logs), &entry); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, logs)
	}
	hint := keyformat.Hint(key)
	for _, want := range []string{`"message":"message ` + hint, `"path":"/v1/keys/` + hint, `"` + hint + `":"as an attribute key"`,
		`"error":"store: ` + hint, `"s":"` + hint, `["a","` + hint + `"]`, `{"Key":"` + hint, `"valuer":"valuer ` + hint,
		`"raw":"` + hint, `"with":"w ` + hint} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
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
				LogRequest(r.Context(), c.log, slog.LevelWarn, r, "p1", "request refused",
					slog.String("reason", "unknown_key"), slog.String("key_hint", "kg_003a…qIjo"))
			}
		})
	}
}
