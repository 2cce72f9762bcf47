package apikey

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/testkit/leak"
	"github.com/keygate/keygate/internal/view"
)

// newServerLoggingTo is newServer with log, a logger of the caller's own,
// passed with WithLogger instead of the fixture's; the server's logs
// buffer stays empty.
func newServerLoggingTo(t testing.TB, log *slog.Logger) *server {
	t.Helper()
	clock := testkit.NewFakeClock()
	fs := &testkit.FaultyStore{Store: memstore.New()}
	g := New(testConfig(), fs, WithClock(clock.Now), WithLogger(log))
	t.Cleanup(func() { g.stop() })
	return &server{Gate: g, Handler: routes(g), store: fs, clock: clock, logs: &testkit.SyncBuffer{}}
}

func TestAuthLogsNeverHoldTheKey(t *testing.T) {
	s := newServer(t, nil)
	valid, _ := s.mint(t, "acme")
	revoked, _ := s.mint(t, "acme", func(k *store.Key) { k.RevokedAt = t0 })
	unknown, _ := keyformat.New("kg")
	malformed := valid[:20] + "!" + valid[21:]
	for _, key := range []string{valid, malformed, unknown, revoked} {
		s.do("GET", "/", "", key)
	}
	s.store.Down.Store(true)
	s.clock.Advance(2 * time.Minute)
	s.do("GET", "/", "", valid) // stale-if-error warning
	s.waitRefreshes()
	logs := s.logs.String()
	for name, key := range map[string]string{"valid": valid, "malformed": malformed, "unknown": unknown, "revoked": revoked} {
		for i := 0; i+12 <= len(key)-3; i++ {
			if chunk := key[3+i : 3+i+12]; strings.Contains(logs, chunk) {
				t.Fatalf("logs hold %q of the %s key:\n%s", chunk, name, logs)
			}
		}
	}
	for _, want := range []string{`"reason":"malformed_key"`, `"reason":"unknown_key"`, `"reason":"revoked_key"`, `"key_hint":"` + keyformat.Hint(revoked) + `"`, `"severity":"WARNING"`, `"client_ip":"192.0.2.1"`, "serving a stale cached key"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// The Cloud Logging fields of trace correlation.
const (
	traceField = "logging.googleapis.com/trace"
	spanField  = "logging.googleapis.com/spanId"
)

func TestAuthLogTrace(t *testing.T) {
	cases := []struct {
		name, header, value, wantTrace, wantSpan string
		project                                  string
	}{
		{"cloud trace context", "X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1", "projects/p1/traces/105445aa7843bc8bf206b12000100000", "0000000000000001", "p1"},
		{"traceparent", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "projects/p1/traces/0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "p1"},
		{"no project", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "", "", ""},
		{"bad trace", "X-Cloud-Trace-Context", "nonsense", "", "", "p1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, nil, func(cfg *Config) { cfg.Project = c.project })
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set(c.header, c.value)
			s.ServeHTTP(httptest.NewRecorder(), r)
			var entry map[string]any
			if err := json.Unmarshal([]byte(s.logs.String()), &entry); err != nil {
				t.Fatalf("log %q: %v", s.logs, err)
			}
			if got, _ := entry[traceField].(string); got != c.wantTrace {
				t.Errorf("trace = %q, want %q", got, c.wantTrace)
			}
			if got, _ := entry[spanField].(string); got != c.wantSpan {
				t.Errorf("span = %q, want %q", got, c.wantSpan)
			}
			if entry["severity"] != "WARNING" || entry["message"] != "request refused" {
				t.Errorf("entry = %v", entry)
			}
		})
	}
}

// TestLogRefusalSeverity checks the levels of refusals, all logged by
// Gate.refuse: a store that does not answer is the service's trouble, at
// ERROR, so that it can be alerted on; a refused key or request is the
// caller's, at WARNING.
func TestLogRefusalSeverity(t *testing.T) {
	s := newServer(t, nil)
	uncached, _ := s.mint(t, "acme")
	s.do("GET", "/", "") // missing_api_key
	s.store.Down.Store(true)
	if w := s.do("GET", "/", "", uncached); w.Code != 503 {
		t.Fatalf("uncached key with the store down = %d", w.Code)
	}
	var entries []map[string]any
	for line := range strings.Lines(s.logs.String()) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		entries = append(entries, e)
	}
	if len(entries) != 2 {
		t.Fatalf("%d log entries, want 2:\n%s", len(entries), s.logs)
	}
	for i, want := range []struct{ reason, severity string }{{"missing_api_key", "WARNING"}, {"store_unavailable", "ERROR"}} {
		if e := entries[i]; e["reason"] != want.reason || e["severity"] != want.severity || e["message"] != "request refused" {
			t.Errorf("entry %d = %v, want reason %s at %s", i, e, want.reason, want.severity)
		}
	}
	if e := entries[1]; e["error"] == nil || !strings.Contains(e["error"].(string), testkit.ErrStoreDown.Error()) {
		t.Errorf("the store_unavailable entry lacks the cause: %v", e)
	}
}

// TestLogsNeverHoldAKeyAnywhere sends keys where a caller might paste them
// (the path, the query, other headers, the body) with every refusal keygate
// logs and with the audited 200s, and finds no 12-character piece of any key
// in the logs: those of keygate's own logger, and those of a plain JSON
// handler of the caller's, passed with WithLogger, which redacts nothing
// itself.
func TestLogsNeverHoldAKeyAnywhere(t *testing.T) {
	t.Run("keygate's logger", func(t *testing.T) {
		s := newServer(t, nil)
		testLogsNeverHoldAKey(t, s, s.logs, "message")
	})
	t.Run("a caller's handler", func(t *testing.T) {
		buf := &testkit.SyncBuffer{}
		s := newServerLoggingTo(t, slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		testLogsNeverHoldAKey(t, s, buf, slog.MessageKey)
	})
}

func testLogsNeverHoldAKey(t *testing.T, s *server, logBuf *testkit.SyncBuffer, messageKey string) {
	manager := func(k *store.Key) { k.Scopes = []string{scopeThings, scopeUsage, scopeKeys} }
	valid, _ := s.mint(t, "acme", manager)
	revoked, _ := s.mint(t, "acme", func(k *store.Key) { k.RevokedAt = t0.Add(-time.Second) })
	expired, _ := s.mint(t, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(-time.Second) })
	narrow, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeThings} })
	limited, _ := s.mint(t, "acme", manager, func(k *store.Key) { k.RateLimit, k.Burst = 0.001, 1 })
	quota, _ := s.mint(t, "acme", manager, func(k *store.Key) { k.MonthlyQuota = 1 })
	uncached, _ := s.mint(t, "acme")
	pasted, _ := keyformat.New("kg")
	// An operator pasted a key where the owner goes: the audit entries log
	// the owner.
	careless, carelessKey := s.mint(t, "acme "+pasted, manager)
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

	// The fixture's routes are a plain ServeMux: its 404 and 405 are not
	// problems (wantCode ""); package keygate's routes answer them as
	// problems. Either way, they are not logged.
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
		{"unknown route", "GET", "/nope/", []string{valid}, nil, 404, ""},
		{"wrong method", "PUT", "/v1/keys/", []string{valid}, nil, 405, ""},
		// The data plane's limits: the key endpoints are management (manage.go).
		{"rate limited", "GET", "/?", []string{limited}, func() { send("GET", "/?", "", limited) }, 429, "rate_limited"},
		{"quota exceeded", "GET", "/?", []string{quota}, func() { send("GET", "/?", "", quota) }, 429, "quota_exceeded"},
		{"store unavailable", "DELETE", "/v1/keys/", []string{uncached}, func() { s.store.Down.Store(true) }, 503, "store_unavailable"},
		{"store call failed", "GET", "/v1/keys/" + carelessKey.ID + "?", []string{valid}, func() { s.store.Down.Store(true) }, 503, "store_unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, leak := range leaks {
				s.store.Down.Store(false)
				if c.prepare != nil {
					c.prepare()
				}
				w := send(c.method, c.pathPrefix, leak, c.apiKeys...)
				if w.Code != c.wantStatus {
					t.Fatalf("status %d, want %d: %s", w.Code, c.wantStatus, w.Body)
				}
				if c.wantCode == "" {
					continue
				}
				if p := testkit.Problem(t, w); p.Code != c.wantCode {
					t.Fatalf("code %s, want %s", p.Code, c.wantCode)
				}
			}
			s.store.Down.Store(false)
		})
	}

	// The audited 200s: a key minted and rotated by a careless owner, with
	// keys pasted everywhere.
	for _, leak := range leaks {
		w := send("POST", "", leak, careless)
		if w.Code != http.StatusCreated {
			t.Fatalf("POST /v1/keys = %d %s", w.Code, w.Body)
		}
		var minted view.NewKeyView
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
		var rotated view.RotatedKeyView
		if err := json.Unmarshal(rw.Body.Bytes(), &rotated); err != nil {
			t.Fatal(err)
		}
		secrets["rotated "+rotated.ID] = rotated.Key
	}
	s.waitRefreshes()

	logs := logBuf.String()
	if chunk, name := leak.In(logs, secrets); chunk != "" {
		t.Fatalf("logs hold %q of the %s key:\n%s", chunk, name, logs)
	}
	for _, want := range []string{
		`"reason":"missing_api_key"`, `"reason":"malformed_key"`, `"reason":"unknown_key"`,
		`"reason":"revoked_key"`, `"reason":"expired_key"`, `"reason":"multiple_api_keys"`,
		`"reason":"insufficient_scope"`, `"reason":"rate_limited"`, `"reason":"quota_exceeded"`,
		`"reason":"store_unavailable"`, `"` + messageKey + `":"audit: key create"`, `"` + messageKey + `":"audit: key rotate"`,
		// A pasted key is logged as its hint, so that it can be recognised.
		`"path":"/v1/keys/` + keyformat.Hint(valid) + `"`,
		`"owner":"acme ` + keyformat.Hint(pasted) + `"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// recorder is a slog handler of a caller's own that keeps, as text, every
// message and attribute it receives, before any formatting: what a
// handler that ships records elsewhere (or formats them its own way) gets.
type recorder struct {
	mu      *sync.Mutex
	entries *[]string
	pre     string // the attributes of With, as received
}

func newRecorder() recorder { return recorder{mu: &sync.Mutex{}, entries: new([]string)} }

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s%s", rec.Level, rec.Message, r.pre)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value) // a group's attributes, unresolved values: fmt's %+v
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.entries = append(*r.entries, b.String())
	return nil
}

func (r recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	for _, a := range attrs {
		r.pre += fmt.Sprintf(" %s=%s", a.Key, a.Value)
	}
	return r
}

func (r recorder) WithGroup(name string) slog.Handler {
	r.pre += " group " + name
	return r
}

func (r recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(*r.entries, "\n")
}

// TestWithLoggerNeverReceivesAKey checks that a logger passed with
// WithLogger never receives a key, whatever its handler: the Gate puts
// redaction in front of it (logging.Redacting). It once did not: a
// caller's logger got paths, owners and errors as they were, and only
// keygate's own logger redacted them. The requests paste keys into the
// path of refused, stale-served and audited requests and into an owner.
func TestWithLoggerNeverReceivesAKey(t *testing.T) {
	rec := newRecorder()
	s := newServerLoggingTo(t, slog.New(rec).With("service", "bingo"))
	pasted, _ := keyformat.New("kg")
	manager, _ := s.mint(t, "acme "+pasted, func(k *store.Key) { k.Scopes = []string{scopeThings, scopeUsage, scopeKeys} })
	stale, _ := s.mint(t, "acme")
	unknown, _ := keyformat.New("kg")
	secrets := map[string]string{"pasted": pasted, "manager": manager, "stale": stale, "unknown": unknown}

	s.do("GET", "/"+pasted, "")                   // missing key
	s.do("GET", "/v1/keys/"+pasted, "", unknown)  // unknown key
	s.do("DELETE", "/v1/keys/"+pasted, "", stale) // insufficient scope
	w := s.do("POST", "/v1/keys?key="+pasted, `{"name":"n"}`, manager)
	if w.Code != http.StatusCreated {
		t.Fatalf("POST /v1/keys = %d %s", w.Code, w.Body)
	}
	var minted view.NewKeyView
	testkit.MustJSON(t, w, http.StatusCreated, &minted)
	secrets["minted"] = minted.Key
	s.do("GET", "/", "", stale)
	s.store.Down.Store(true)
	s.clock.Advance(2 * time.Minute)
	if w := s.do("GET", "/"+pasted, "", stale); w.Code != http.StatusNotFound { // served stale: the path is unknown
		t.Errorf("stale key = %d, want 404", w.Code)
	}
	s.waitRefreshes()
	uncached, _ := s.mint(t, "acme")
	secrets["uncached"] = uncached
	s.do("GET", "/v1/usage/"+pasted, "", uncached) // store unavailable

	logs := rec.String()
	if chunk, name := leak.In(logs, secrets); chunk != "" {
		t.Fatalf("the caller's handler received %q of the %s key:\n%s", chunk, name, logs)
	}
	hint := keyformat.Hint(pasted)
	for _, want := range []string{"service=bingo", "path=/" + hint, "path=/v1/keys/" + hint, "reason=unknown_key",
		"reason=insufficient_scope", "audit: key create", "owner=acme " + hint, "serving a stale cached key",
		"ERROR request refused", "reason=store_unavailable"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the caller's handler lacks %s:\n%s", want, logs)
		}
	}
}
