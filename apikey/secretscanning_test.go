package apikey

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
	"github.com/keygate/keygate/internal/view"
)

// keysFrom makes a Gate fetch GitHub's keys from gh.
func keysFrom(gh *testkit.GitHub) func(*Config) {
	return func(c *Config) { c.SecretScanningKeysURL = gh.URL }
}

// leakStore counts a Gate's calls of the store that secret scanning makes,
// and fails them on demand.
type leakStore struct {
	store.Store
	getMany, maxBatch, leaks, revokes atomic.Int64
	readsDown, revokesDown            atomic.Bool
	revokesHang                       atomic.Bool
}

// errDown is the error of a store call made to fail.
var errDown = errors.New("store down")

func (s *leakStore) GetMany(ctx context.Context, ids []string) ([]store.Key, error) {
	s.getMany.Add(1)
	if s.readsDown.Load() {
		return nil, errDown
	}
	for n := s.maxBatch.Load(); int64(len(ids)) > n && !s.maxBatch.CompareAndSwap(n, int64(len(ids))); n = s.maxBatch.Load() {
	}
	return s.Store.GetMany(ctx, ids)
}

func (s *leakStore) RecordLeak(ctx context.Context, id string, at time.Time, url string) (store.Key, error) {
	s.leaks.Add(1)
	return s.Store.RecordLeak(ctx, id, at, url)
}

func (s *leakStore) Revoke(ctx context.Context, id string, at time.Time) (store.Key, error) {
	s.revokes.Add(1)
	if s.revokesHang.Load() {
		<-ctx.Done()
		return store.Key{}, ctx.Err()
	}
	if s.revokesDown.Load() {
		return store.Key{}, fmt.Errorf("%w: %w", store.ErrNotApplied, errDown)
	}
	return s.Store.Revoke(ctx, id, at)
}

func (s *leakStore) writes() int64 { return s.leaks.Load() + s.revokes.Load() }

// scanned is a server with its secret scanning handler, GitHub and the
// counting store beneath.
type scanned struct {
	*server
	scan  http.Handler
	gh    *testkit.GitHub
	calls *leakStore
}

func newScanned(t testing.TB, s store.Store, change ...func(*Config)) *scanned {
	t.Helper()
	if s == nil {
		s = memstore.New()
	}
	gh := testkit.NewGitHub(t, "k1")
	calls := &leakStore{Store: s}
	srv := newServer(t, calls, append([]func(*Config){keysFrom(gh)}, change...)...)
	return &scanned{server: srv, scan: srv.GitHubSecretScanningHandler(), gh: gh, calls: calls}
}

// report posts body to the handler with the key identifier and signature
// given ("" for none).
func (s *scanned) report(body []byte, id, sig string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/v1/secret-scanning/github", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if id != "" {
		r.Header.Set(headerKeyIdentifier, id)
	}
	if sig != "" {
		r.Header.Set(headerKeySignature, sig)
	}
	w := httptest.NewRecorder()
	s.scan.ServeHTTP(w, r)
	return w
}

// signed posts body signed by k1.
func (s *scanned) signed(t testing.TB, body []byte) *httptest.ResponseRecorder {
	return s.report(body, "k1", s.gh.Sign(t, "k1", body))
}

// reportOf is GitHub's report of tokens found at url.
func reportOf(url string, tokens ...string) []byte {
	ms := make([]secretMatch, len(tokens))
	for i, tok := range tokens {
		ms[i] = secretMatch{Token: tok, Type: "keygate_api_key", URL: url, Source: "commit"}
	}
	b, _ := json.Marshal(ms)
	return b
}

const leakAt = "https://github.com/octo/demo/blob/abc123/config.js"

func labelsOf(t testing.TB, w *httptest.ResponseRecorder) []tokenLabel {
	t.Helper()
	var ls []tokenLabel
	testkit.MustJSON(t, w, http.StatusOK, &ls)
	return ls
}

// TestSecretScanningRevokes: a live key in a signed report is answered
// true_positive with its SHA-256, recorded leaked with the URL, revoked
// (refused at once on this instance), audited by ID and URL without the
// key; the same report again writes nothing and answers the same.
func TestSecretScanningRevokes(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		s := newScanned(t, st, slowStore)
		key, k := s.mint(t, "acme")
		if w := s.call("GET", "/", key, ""); w.Code != 200 {
			t.Fatalf("before: %d", w.Code)
		}
		body := reportOf(leakAt, key)
		ls := labelsOf(t, s.signed(t, body))
		if len(ls) != 1 || ls[0] != (tokenLabel{TokenHash: k.ID, TokenType: "keygate_api_key", Label: "true_positive"}) {
			t.Fatalf("answer %+v", ls)
		}
		if w := s.call("GET", "/", key, ""); w.Code != 401 {
			t.Errorf("leaked key answered %d, want 401", w.Code)
		}
		got, err := st.Get(t.Context(), k.ID)
		if err != nil || got.RevokedAt.IsZero() || !got.LeakedAt.Equal(store.StoredTime(s.clock.Now())) || got.LeakURL != leakAt {
			t.Errorf("stored %+v, %v: want revoked and leaked at %v, %s", got, err, s.clock.Now(), leakAt)
		}
		logs := s.logs.String()
		if !strings.Contains(logs, `"audit: key leaked"`) || !strings.Contains(logs, k.ID) || !strings.Contains(logs, leakAt) ||
			!strings.Contains(logs, `"severity":"NOTICE"`) || strings.Contains(logs, key) {
			t.Errorf("audit log: want a NOTICE with the key ID and URL, never the key:\n%s", logs)
		}
		writes := s.calls.writes()
		if writes != 2 {
			t.Errorf("%d writes, want 2: record the leak, revoke", writes)
		}
		s.clock.Advance(time.Minute)
		if again := labelsOf(t, s.signed(t, body)); len(again) != 1 || again[0] != ls[0] {
			t.Errorf("replay answered %+v, want %+v", again, ls)
		}
		if n := s.calls.writes(); n != writes {
			t.Errorf("the replay wrote %d times", n-writes)
		}
	})
}

// TestSecretScanningNotify: LEAKED_KEY_ACTION=notify records the leak and
// leaves the key working; a replay writes nothing.
func TestSecretScanningNotify(t *testing.T) {
	s := newScanned(t, nil, func(c *Config) { c.LeakedKeyAction = leakNotify })
	key, k := s.mint(t, "acme")
	body := reportOf(leakAt, key)
	if ls := labelsOf(t, s.signed(t, body)); ls[0].Label != "true_positive" {
		t.Fatalf("answer %+v", ls)
	}
	if w := s.call("GET", "/", key, ""); w.Code != 200 {
		t.Errorf("notified key answered %d, want 200", w.Code)
	}
	got, _ := s.calls.Store.Get(t.Context(), k.ID)
	if got.LeakedAt.IsZero() || got.LeakURL != leakAt || !got.RevokedAt.IsZero() {
		t.Errorf("stored %+v: want leaked, not revoked", got)
	}
	labelsOf(t, s.signed(t, body))
	if s.calls.leaks.Load() != 1 || s.calls.revokes.Load() != 0 {
		t.Errorf("%d leaks, %d revocations recorded; want 1, 0", s.calls.leaks.Load(), s.calls.revokes.Load())
	}
}

// TestSecretScanningRefused: a report not signed by a published key, or
// malformed, is refused before any store call, logged, and the key in it
// keeps working.
func TestSecretScanningRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		send   func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder
		status int
		code   string
	}{
		{"no signature", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			return s.report(body, "k1", "")
		}, 401, "missing_signature"},
		{"no identifier", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			return s.report(body, "", s.gh.Sign(t, "k1", body))
		}, 401, "missing_signature"},
		{"signature not base64", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			return s.report(body, "k1", "%%%")
		}, 401, "bad_signature"},
		{"tampered body", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			sig := s.gh.Sign(t, "k1", body)
			return s.report(bytes.Replace(body, []byte("demo"), []byte("dem0"), 1), "k1", sig)
		}, 401, "bad_signature"},
		{"signed by an unpublished key under a published identifier", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			s.gh.AddKey(t, "forger", false)
			return s.report(body, "k1", s.gh.Sign(t, "forger", body))
		}, 401, "bad_signature"},
		{"unknown identifier", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			s.gh.AddKey(t, "forger", false)
			return s.report(body, "forger", s.gh.Sign(t, "forger", body))
		}, 401, "unknown_key_identifier"},
		{"signature of an empty body", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			return s.report(body, "k1", s.gh.Sign(t, "k1", nil))
		}, 401, "bad_signature"},
		{"signed, not JSON", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			return s.signed(t, body[:len(body)-1])
		}, 400, "malformed_report"},
		{"signed, an object", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			return s.signed(t, []byte(`{"token":"x"}`))
		}, 400, "malformed_report"},
		{"signed, null", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			return s.signed(t, []byte(`null`))
		}, 400, "malformed_report"},
		{"signed, too many matches", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			many := make([]string, maxReportMatches+1)
			for i := range many {
				many[i] = "x"
			}
			return s.signed(t, reportOf(leakAt, many...))
		}, 413, "too_many_matches"},
		{"too large", func(t *testing.T, s *scanned, body []byte) *httptest.ResponseRecorder {
			big := append(bytes.Repeat([]byte(" "), maxReportBody), body...)
			return s.signed(t, big)
		}, 413, "too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScanned(t, nil)
			key, _ := s.mint(t, "acme")
			testkit.WantProblem(t, c.send(t, s, reportOf(leakAt, key)), c.status, c.code)
			if n := s.calls.getMany.Load() + s.calls.writes(); n != 0 {
				t.Errorf("%d store calls, want none", n)
			}
			if w := s.call("GET", "/", key, ""); w.Code != 200 {
				t.Errorf("the key answered %d after a refused report, want 200", w.Code)
			}
			if logs := s.logs.String(); !strings.Contains(logs, "secret scanning report refused") || !strings.Contains(logs, c.code) {
				t.Errorf("refusal not logged:\n%s", logs)
			}
		})
	}
}

// TestSecretScanningKeyRefetch: an unknown identifier fetches GitHub's keys
// again at most once a minute after a fetch that succeeded, so a forger's
// identifiers cost GitHub one request a minute; within that minute an
// identifier no fetch has looked for is answered 503 with Retry-After up to
// the next fetch, never 401, so that a key GitHub starts using is accepted
// when GitHub sends the report again.
func TestSecretScanningKeyRefetch(t *testing.T) {
	s := newScanned(t, nil)
	body := []byte(`[]`)
	labelsOf(t, s.signed(t, body))
	if n := s.gh.Fetches.Load(); n != 1 {
		t.Fatalf("%d fetches after the first report, want 1", n)
	}
	labelsOf(t, s.signed(t, body))
	s.gh.AddKey(t, "k2", true) // GitHub rotates its key
	s.clock.Advance(20 * time.Second)
	for i := range 5 {
		w := s.report(body, fmt.Sprint("unknown", i), s.gh.Sign(t, "k2", body))
		testkit.WantProblem(t, w, 503, "keys_unavailable")
		if got := w.Header().Get("Retry-After"); got != "40" {
			t.Errorf("Retry-After %q, want 40 (to the next fetch)", got)
		}
	}
	if n := s.gh.Fetches.Load(); n != 1 {
		t.Errorf("%d fetches within the minute, want 1", n)
	}
	if logs := s.logs.String(); strings.Contains(logs, `"ERROR"`) || !strings.Contains(logs, `"WARNING"`) {
		t.Errorf("identifiers waiting for the next fetch logged as an outage, or not at all:\n%s", logs)
	}
	testkit.WantProblem(t, s.report(body, "k2", s.gh.Sign(t, "k2", body)), 503, "keys_unavailable")
	s.clock.Advance(keysRefetchInterval - 20*time.Second)
	labelsOf(t, s.report(body, "k2", s.gh.Sign(t, "k2", body)))
	if n := s.gh.Fetches.Load(); n != 2 {
		t.Errorf("%d fetches a minute on, want 2", n)
	}
	// A fetch has looked for "forger" now: 401, not a retry.
	testkit.WantProblem(t, s.report(body, "forger", s.gh.Sign(t, "k2", body)), 503, "keys_unavailable")
	s.clock.Advance(keysRefetchInterval)
	testkit.WantProblem(t, s.report(body, "forger", s.gh.Sign(t, "k2", body)), 401, "unknown_key_identifier")
}

// TestSecretScanningReportLeaves: a report with a junk identifier that
// leaves after 100 ms (a forger's, dropped) ends only its own wait: the
// fetch it started goes on, on the Gate's context, and a genuine report a
// second later is verified and its key revoked, not answered 503 for a
// minute.
func TestSecretScanningReportLeaves(t *testing.T) {
	s := newScanned(t, nil)
	key, _ := s.mint(t, "acme")
	arrived, release := s.gh.Hold(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	junk := httptest.NewRequestWithContext(ctx, "POST", "/v1/secret-scanning/github", strings.NewReader(`[]`))
	junk.Header.Set(headerKeyIdentifier, "junk")
	junk.Header.Set(headerKeySignature, s.gh.Sign(t, "k1", []byte(`[]`)))
	w := httptest.NewRecorder()
	s.scan.ServeHTTP(w, junk)
	testkit.WantProblem(t, w, 503, "keys_unavailable")
	<-arrived // the fetch the junk report started is still under way
	release()
	s.clock.Advance(time.Second)
	body := reportOf(leakAt, key)
	if ls := labelsOf(t, s.signed(t, body)); ls[0].Label != labelTruePositive {
		t.Errorf("label %q, want %q", ls[0].Label, labelTruePositive)
	}
	if s.calls.revokes.Load() != 1 {
		t.Errorf("%d revocations, want 1", s.calls.revokes.Load())
	}
	if w := s.call("GET", "/", key, ""); w.Code != 401 {
		t.Errorf("the reported key answered %d, want 401", w.Code)
	}
	if n := s.gh.Fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1 (the junk report's, finished)", n)
	}
}

// TestSecretScanningFetchFails: a fetch that fails does not spend the
// minute: a genuine report a second later fetches again and is verified.
// While GitHub stays down, the fetches back off, doubling from 1 s to a
// minute, however many reports arrive.
func TestSecretScanningFetchFails(t *testing.T) {
	t.Run("once", func(t *testing.T) {
		s := newScanned(t, nil)
		key, _ := s.mint(t, "acme")
		s.gh.Down.Store(true)
		w := s.report([]byte(`[]`), "junk", s.gh.Sign(t, "k1", []byte(`[]`)))
		testkit.WantProblem(t, w, 503, "keys_unavailable")
		if got := w.Header().Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After %q, want 1", got)
		}
		s.gh.Down.Store(false)
		s.clock.Advance(time.Second)
		if ls := labelsOf(t, s.signed(t, reportOf(leakAt, key))); ls[0].Label != labelTruePositive {
			t.Errorf("label %q, want %q", ls[0].Label, labelTruePositive)
		}
		if n := s.gh.Fetches.Load(); n != 2 {
			t.Errorf("%d fetches, want 2", n)
		}
	})
	t.Run("backoff", func(t *testing.T) {
		s := newScanned(t, nil)
		s.gh.Down.Store(true)
		body := []byte(`[]`)
		for i := range 600 { // a report a second for 10 minutes
			w := s.report(body, fmt.Sprint("junk", i), s.gh.Sign(t, "k1", body))
			testkit.WantProblem(t, w, 503, "keys_unavailable")
			s.clock.Advance(time.Second)
		}
		// At 0, 1, 3, 7, 15, 31 and 63 s, then once a minute to 543 s: 15.
		if n := s.gh.Fetches.Load(); n != 15 {
			t.Errorf("%d fetches in 10 minutes of reports while GitHub is down, want 15", n)
		}
	})
}

// TestSecretScanningCloseEndsFetch: Close ends a fetch of the keys that
// hangs, and the report waiting for it is answered 503.
func TestSecretScanningCloseEndsFetch(t *testing.T) {
	defer func(d time.Duration) { keysFetchTimeout = d }(keysFetchTimeout)
	keysFetchTimeout = time.Hour
	s := newScanned(t, nil)
	arrived, _ := s.gh.Hold(t)
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- s.signed(t, []byte(`[]`)) }()
	<-arrived
	s.Close(context.Background())
	select {
	case w := <-done:
		testkit.WantProblem(t, w, 503, "keys_unavailable")
	case <-time.After(30 * time.Second): // only keeps a failing test from hanging
		t.Fatal("the report still waits for a fetch after Close")
	}
}

// TestSecretScanningKeysUnavailable: while GitHub's keys cannot be
// fetched, a report is answered 503, for GitHub to send again, and nothing
// is read.
func TestSecretScanningKeysUnavailable(t *testing.T) {
	s := newScanned(t, nil)
	s.gh.Close()
	w := s.signed(t, []byte(`[]`))
	testkit.WantProblem(t, w, 503, "keys_unavailable")
	if s.calls.getMany.Load() != 0 {
		t.Error("the store was read")
	}
}

// TestSecretScanningKeysHang: a fetch of GitHub's keys that hangs ends at
// its deadline, the report answered 503 for GitHub to send again; and while
// one hangs (started by an unknown identifier), a report signed by a key
// already fetched is answered without waiting for it.
func TestSecretScanningKeysHang(t *testing.T) {
	t.Run("first fetch", func(t *testing.T) {
		defer func(d time.Duration) { keysFetchTimeout = d }(keysFetchTimeout)
		keysFetchTimeout = 100 * time.Millisecond
		s := newScanned(t, nil, func(c *Config) { c.SecretScanningKeysURL = "http://" + testkit.Mute(t) })
		testkit.WantProblem(t, s.signed(t, []byte(`[]`)), 503, "keys_unavailable")
	})
	t.Run("refetch", func(t *testing.T) {
		defer func(d time.Duration) { keysFetchTimeout = d }(keysFetchTimeout)
		keysFetchTimeout = time.Hour // the hang lasts until the test ends it
		var (
			upstream *testkit.GitHub
			hang     atomic.Bool
			hanging  = make(chan struct{})
			release  = make(chan struct{})
		)
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hang.Load() {
				close(hanging)
				<-release
				http.Error(w, "slow", http.StatusServiceUnavailable)
				return
			}
			resp, err := http.Get(upstream.URL)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			io.Copy(w, resp.Body)
		}))
		defer front.Close()
		s := newScanned(t, nil, func(c *Config) { c.SecretScanningKeysURL = front.URL })
		upstream = s.gh
		body := []byte(`[]`)
		labelsOf(t, s.signed(t, body)) // k1 fetched
		hang.Store(true)
		s.gh.AddKey(t, "k2", false)
		s.clock.Advance(keysRefetchInterval)
		unknown := make(chan *httptest.ResponseRecorder)
		go func() { unknown <- s.report(body, "k2", s.gh.Sign(t, "k2", body)) }()
		<-hanging
		known := make(chan *httptest.ResponseRecorder)
		go func() { known <- s.signed(t, body) }()
		select {
		case w := <-known:
			labelsOf(t, w)
		case <-time.After(30 * time.Second): // only keeps a failing test from hanging
			t.Error("a report signed by a known key waited for the fetch an unknown identifier started")
		}
		close(release)
		testkit.WantProblem(t, <-unknown, 503, "keys_unavailable") // the fetch failed: k2 not looked for
		if n := s.gh.Fetches.Load(); n != 1 {
			t.Errorf("upstream fetches %d, want 1 (the second hung at the front)", n)
		}
	})
}

// TestSecretScanningMix: live, revoked, expired, unknown, malformed and
// foreign tokens in one report, a live one twice: each labelled, only the
// live key written, once.
func TestSecretScanningMix(t *testing.T) {
	s := newScanned(t, nil)
	live, liveK := s.mint(t, "acme")
	revoked, revokedK := s.mint(t, "acme", func(k *store.Key) { k.RevokedAt = t0 })
	expired, expiredK := s.mint(t, "acme", func(k *store.Key) { k.ExpiresAt = t0 })
	unknown, _ := keyformat.New("kg")
	badSum := live[:len(live)-1] + string(live[len(live)-1]^1)
	foreign, _ := keyformat.New("other")
	tokens := []string{live, revoked, expired, unknown, badSum, foreign, "", live}
	ls := labelsOf(t, s.signed(t, reportOf(leakAt, tokens...)))
	want := []string{"true_positive", "true_positive", "true_positive", "false_positive", "false_positive", "false_positive", "false_positive", "true_positive"}
	if len(ls) != len(want) {
		t.Fatalf("%d labels for %d tokens", len(ls), len(want))
	}
	for i, l := range ls {
		if l.Label != want[i] || l.TokenHash != keyformat.ID(tokens[i]) {
			t.Errorf("token %d: %+v, want %s with its SHA-256", i, l, want[i])
		}
	}
	if s.calls.leaks.Load() != 1 || s.calls.revokes.Load() != 1 || s.calls.getMany.Load() != 1 {
		t.Errorf("%d leaks, %d revocations, %d reads; want 1, 1, 1", s.calls.leaks.Load(), s.calls.revokes.Load(), s.calls.getMany.Load())
	}
	for _, k := range []store.Key{revokedK, expiredK} {
		if got, _ := s.calls.Store.Get(t.Context(), k.ID); !got.LeakedAt.IsZero() {
			t.Errorf("key %s, not live, was written", k.Hint)
		}
	}
	if got, _ := s.calls.Store.Get(t.Context(), liveK.ID); got.RevokedAt.IsZero() {
		t.Error("the live key is not revoked")
	}
}

// TestSecretScanningThousand: 1,000 matches in one report are read in at
// most one batched read per 100 tokens, and the live keys among them are
// all revoked.
func TestSecretScanningThousand(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, st store.Store) {
		s := newScanned(t, st, slowStore)
		tokens, live := thousandTokens(t, s.server, 20)
		ls := labelsOf(t, s.signed(t, reportOf(leakAt, tokens...)))
		if len(ls) != maxReportMatches {
			t.Fatalf("%d labels", len(ls))
		}
		if n, most := s.calls.getMany.Load(), s.calls.maxBatch.Load(); n > maxReportMatches/100 || most > 100 {
			t.Errorf("%d batched reads of up to %d IDs: want at most 10 of 100", n, most)
		}
		for _, k := range live {
			if got, err := st.Get(t.Context(), k.ID); err != nil || got.RevokedAt.IsZero() || got.LeakURL != leakAt {
				t.Errorf("live key %s: %+v, %v; want revoked, leaked", k.Hint, got, err)
			}
		}
	})
}

// thousandTokens are maxReportMatches well-formed tokens, live of
// them minted in s's store.
func thousandTokens(t testing.TB, s *server, live int) ([]string, []store.Key) {
	t.Helper()
	tokens := make([]string, maxReportMatches)
	var keys []store.Key
	for i := range tokens {
		if i%(maxReportMatches/live) == 0 {
			key, k := s.mint(t, fmt.Sprint("owner", i))
			tokens[i] = key
			keys = append(keys, k)
			continue
		}
		tokens[i], _ = keyformat.New("kg")
	}
	return tokens, keys
}

// TestSecretScanningStoreDown: a store that fails the reads, or the
// revocation after the leak is recorded, is answered 503 for GitHub to
// send the report again; sent again once the store is back, it finishes
// the work: the key revoked, the leak recorded once.
func TestSecretScanningStoreDown(t *testing.T) {
	s := newScanned(t, nil)
	key, k := s.mint(t, "acme")
	body := reportOf(leakAt, key)
	s.calls.readsDown.Store(true)
	testkit.WantProblem(t, s.signed(t, body), 503, "store_unavailable")
	if s.calls.writes() != 0 {
		t.Error("wrote after a failed read")
	}
	s.calls.readsDown.Store(false)
	s.calls.revokesDown.Store(true)
	testkit.WantProblem(t, s.signed(t, body), 503, "store_unavailable")
	if w := s.call("GET", "/", key, ""); w.Code != 200 {
		t.Fatalf("the key answered %d while its revocation failed", w.Code)
	}
	s.calls.revokesDown.Store(false)
	if ls := labelsOf(t, s.signed(t, body)); ls[0].Label != "true_positive" {
		t.Fatalf("answer %+v", ls)
	}
	if w := s.call("GET", "/", key, ""); w.Code != 401 {
		t.Errorf("the key answered %d after the report was sent again, want 401", w.Code)
	}
	if n := s.calls.leaks.Load(); n != 1 {
		t.Errorf("the leak was recorded %d times, want 1", n)
	}
	if logs := s.logs.String(); !strings.Contains(logs, "store down") || !strings.Contains(logs, `"severity":"ERROR"`) {
		t.Errorf("the store's failure is not logged as an error:\n%s", logs)
	}
	if got, _ := s.calls.Store.Get(t.Context(), k.ID); got.RevokedAt.IsZero() || got.LeakURL != leakAt {
		t.Errorf("stored %+v", got)
	}
}

// TestSecretScanningConcurrentReports: the same report twice at once, as
// GitHub's retries may send it: both answered alike, the key revoked, the
// first leak kept.
func TestSecretScanningConcurrentReports(t *testing.T) {
	s := newScanned(t, nil)
	key, k := s.mint(t, "acme")
	body := reportOf(leakAt, key)
	sig := s.gh.Sign(t, "k1", body)
	labelsOf(t, s.signed(t, []byte(`[]`))) // keys fetched
	var wg sync.WaitGroup
	answers := make([]*httptest.ResponseRecorder, 4)
	for i := range answers {
		wg.Go(func() { answers[i] = s.report(body, "k1", sig) })
	}
	wg.Wait()
	for _, w := range answers {
		if ls := labelsOf(t, w); ls[0].Label != "true_positive" || ls[0].TokenHash != k.ID {
			t.Errorf("answer %+v", ls)
		}
	}
	got, _ := s.calls.Store.Get(t.Context(), k.ID)
	if got.RevokedAt.IsZero() || got.LeakURL != leakAt {
		t.Errorf("stored %+v", got)
	}
}

// TestSecretScanningOwnerView: the owner's GET /v1/keys and GET
// /v1/keys/{id} show the leaked key revoked, with when and where it was
// found.
func TestSecretScanningOwnerView(t *testing.T) {
	s := newScanned(t, nil)
	admin, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys} })
	key, k := s.mint(t, "acme")
	labelsOf(t, s.signed(t, reportOf(leakAt, key)))
	var page struct{ Keys []view.KeyView }
	testkit.MustJSON(t, s.call("GET", "/v1/keys", admin, ""), 200, &page)
	var v *view.KeyView
	for i := range page.Keys {
		if page.Keys[i].ID == k.ID {
			v = &page.Keys[i]
		}
	}
	if v == nil || v.Status != "revoked" || v.LeakURL != leakAt || v.LeakedAt == nil || !v.LeakedAt.Equal(s.clock.Now()) {
		t.Fatalf("GET /v1/keys shows the leaked key as %+v", v)
	}
	var one map[string]any
	testkit.MustJSON(t, s.call("GET", "/v1/keys/"+k.ID, admin, ""), 200, &one)
	if one["leak_url"] != leakAt || one["leaked_at"] == nil || one["status"] != "revoked" {
		t.Errorf("GET /v1/keys/{id} = %v", one)
	}
}

// TestSecretScanningDeadline: a report of many live keys on a store whose
// revocations hang is answered 503 by its deadline, not after one store
// timeout per key; sent again once the store is back, it revokes them all.
func TestSecretScanningDeadline(t *testing.T) {
	defer func(d time.Duration) { reportTimeout = d }(reportTimeout)
	reportTimeout = 300 * time.Millisecond
	// A store timeout of 2 s: answered by the report's deadline is under
	// one store timeout, with 1.7 s to spare on a loaded machine; 3 rounds
	// of hanging revocations would take 6 s.
	s := newScanned(t, nil, func(c *Config) { c.StoreTimeout = 2 * time.Second })
	var tokens []string
	for i := range 3 * leakWriters {
		key, _ := s.mint(t, fmt.Sprint("owner", i))
		tokens = append(tokens, key)
	}
	body := reportOf(leakAt, tokens...)
	s.calls.revokesHang.Store(true)
	start := time.Now()
	testkit.WantProblem(t, s.signed(t, body), 503, "store_unavailable")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("answered after %v, want by the report's deadline, %v", took, reportTimeout)
	}
	s.calls.revokesHang.Store(false)
	for _, l := range labelsOf(t, s.signed(t, body)) {
		if l.Label != "true_positive" {
			t.Errorf("%+v", l)
		}
	}
	for _, key := range tokens {
		if w := s.call("GET", "/", key, ""); w.Code != 401 {
			t.Errorf("a reported key answered %d, want 401", w.Code)
		}
	}
}

// TestSecretScanningHighS: both twins of a signature, (r, s) and (r, N−s),
// are accepted. GitHub does not say that it signs low-S (OpenSSL, for one,
// does not normalize), so refusing high-S would refuse about half of its
// genuine reports with a permanent-looking 401; and the twin gains a forger
// nothing: it signs the same body, and sending a captured report again is
// harmless (a report is idempotent).
func TestSecretScanningHighS(t *testing.T) {
	s := newScanned(t, nil)
	key, k := s.mint(t, "acme")
	body := reportOf(leakAt, key)
	sig := s.gh.Sign(t, "k1", body)
	twin := testkit.HighS(t, sig)
	der, _ := base64.StdEncoding.DecodeString(twin)
	digest := sha256.Sum256(body)
	if twin == sig || !ecdsa.VerifyASN1(s.gh.PublicKey("k1"), digest[:], der) {
		t.Fatal("the twin is not a second valid signature: the test proves nothing")
	}
	if ls := labelsOf(t, s.report(body, "k1", twin)); ls[0].Label != "true_positive" {
		t.Fatalf("answer %+v", ls)
	}
	if got, _ := s.calls.Store.Get(t.Context(), k.ID); got.LeakedAt.IsZero() {
		t.Errorf("stored %+v: want the leak recorded", got)
	}
}
