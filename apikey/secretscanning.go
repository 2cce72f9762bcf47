package apikey

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/problem"
)

// What LEAKED_KEY_ACTION makes a secret scanning report do to a live key
// found in public: revoke it (the default), or only record the leak, for
// the operator to act on.
const (
	leakRevoke = "revoke"
	leakNotify = "notify"
)

// The bounds of one secret scanning report. 1,000 matches take 10 batched
// reads (store.MaxGetMany each), made at once.
const (
	maxReportBody    = 2 << 20
	maxReportMatches = 1000
)

// GitHub's headers on a secret scanning report.
const (
	headerKeyIdentifier = "Github-Public-Key-Identifier"
	headerKeySignature  = "Github-Public-Key-Signature"
)

// Labels of a token in the answer to a report: one of this issuer's keys,
// live or not, or not one of its keys.
const (
	labelTruePositive  = "true_positive"
	labelFalsePositive = "false_positive"
)

// leakWriters is the most key writes one report makes at once.
const leakWriters = 8

// reportTimeout bounds a report's reads and writes: each store call has
// STORE_TIMEOUT, but a report of many live keys on a slow store makes many.
// What is not done by then is answered 503, and done when GitHub sends the
// report again. A variable for tests.
var reportTimeout = 10 * time.Second

// secretMatch is one match of a report.
type secretMatch struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// tokenLabel is one token's line of the answer.
type tokenLabel struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// GitHubSecretScanningHandler revokes keys GitHub finds in public; no Protect.
func (g *Gate) GitHubSecretScanningHandler() http.Handler {
	keys := newSigningKeys(g.ctx, g.cfg.SecretScanningKeysURL, g.now)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.secretScanning(w, r, keys) })
}

func (g *Gate) secretScanning(w http.ResponseWriter, r *http.Request, keys *signingKeys) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		g.reportRefused(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Send reports with POST.", nil)
		return
	}
	body, err := readBody(w, r, maxReportBody)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			g.reportRefused(w, r, http.StatusRequestEntityTooLarge, codeTooLarge, "The report is larger than 2 MiB.", nil)
			return
		}
		g.reportRefused(w, r, http.StatusBadRequest, codeUnreadable, "The report could not be read.", err)
		return
	}
	if retry, code, err := g.verifyReport(r, body, keys); err != nil {
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
			g.reportRefused(w, r, http.StatusServiceUnavailable, code, "GitHub's signing keys cannot be checked for this key identifier right now. Retry shortly.", err)
			return
		}
		g.reportRefused(w, r, http.StatusUnauthorized, code, "The report is not signed by a key GitHub publishes.", err)
		return
	}
	var matches []secretMatch
	if err := json.Unmarshal(body, &matches); err != nil || matches == nil {
		g.reportRefused(w, r, http.StatusBadRequest, codeMalformedReport, "The report is not a JSON array of matches.", err)
		return
	}
	if len(matches) > maxReportMatches {
		g.reportRefused(w, r, http.StatusRequestEntityTooLarge, codeTooManyMatches, "The report holds more than 1000 matches.", nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), reportTimeout)
	defer cancel()
	labels, err := g.actOnLeaks(r.WithContext(ctx), matches)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		g.reportRefused(w, r, http.StatusServiceUnavailable, CodeStoreUnavailable, "The key store cannot be reached right now. Retry shortly.", g.explain(err))
		return
	}
	problem.WriteJSON(w, http.StatusOK, labels)
}

// verifyReport checks body's signature: nil, or the code of its refusal,
// which is a 503 to retry after retry when that is not zero (the keys
// could not be checked), a 401 when it is.
func (g *Gate) verifyReport(r *http.Request, body []byte, keys *signingKeys) (time.Duration, Code, error) {
	id, sig := r.Header.Get(headerKeyIdentifier), r.Header.Get(headerKeySignature)
	if id == "" || sig == "" {
		return 0, codeMissingSignature, errors.New("no " + headerKeyIdentifier + " or " + headerKeySignature)
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return 0, codeBadSignature, errors.New("signature is not base64")
	}
	pub, retry, err := keys.key(r.Context(), id)
	switch {
	case err != nil:
		return retry, codeKeysUnavailable, fmt.Errorf("key %s: %w", problem.QuoteShort(id), err)
	case pub == nil:
		return 0, codeUnknownKeyIdentifier, errors.New("GitHub publishes no key " + problem.QuoteShort(id))
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, digest[:], der) {
		return 0, codeBadSignature, errors.New("signature does not verify with key " + problem.QuoteShort(id))
	}
	return 0, "", nil
}

// readBody reads r's body, up to limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// reportRefused answers a report with a problem, and logs why.
func (g *Gate) reportRefused(w http.ResponseWriter, r *http.Request, status int, code Code, detail string, err error) {
	attrs := []slog.Attr{slog.String("reason", string(code)), slog.String("key_identifier", problem.QuoteShort(r.Header.Get(headerKeyIdentifier)))}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	level := slog.LevelWarn
	if status >= 500 && !errors.Is(err, errKeyNotFetched) { // a new identifier waits for the next fetch: no outage
		level = slog.LevelError
	}
	g.logRequest(r, level, "secret scanning report refused", attrs...)
	problem.Write(w, problem.New(status, code, detail))
}

// actOnLeaks reads the well-formed tokens' keys, acts on the live ones, and
// labels every match.
func (g *Gate) actOnLeaks(r *http.Request, matches []secretMatch) ([]tokenLabel, error) {
	ids := make([]string, 0, len(matches))
	seen := make(map[string]bool, len(matches))
	for _, m := range matches {
		if keyformat.Parse(m.Token, g.cfg.Prefix) != nil {
			continue
		}
		if id := keyformat.ID(m.Token); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	found, err := g.getMany(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	now := g.now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		slots = make(chan struct{}, leakWriters)
		acted = make(map[string]bool)
	)
	labels := make([]tokenLabel, len(matches))
	for i, m := range matches {
		sum := sha256.Sum256([]byte(m.Token))
		labels[i] = tokenLabel{TokenHash: hex.EncodeToString(sum[:]), TokenType: m.Type, Label: labelFalsePositive}
		k, ok := found[labels[i].TokenHash]
		if !ok || keyformat.Parse(m.Token, g.cfg.Prefix) != nil {
			continue
		}
		labels[i].Label = labelTruePositive
		if acted[k.ID] || !leakToAct(k, now, g.cfg.LeakedKeyAction) {
			continue
		}
		acted[k.ID] = true
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := g.actOnLeak(r, k, m, now); err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return labels, first
}

// leakToAct reports whether a report of k at now has anything to write:
// a live key whose leak is not recorded, or that action revokes.
func leakToAct(k store.Key, now time.Time, action string) bool {
	return k.Status(now) == store.StatusActive && (k.LeakedAt.IsZero() || action == leakRevoke)
}

// actOnLeak records the leak of k, then revokes it unless the action is
// leakNotify: in this order, so that a report sent again after a failure
// finds the leak to revoke, and after a revocation nothing to do.
func (g *Gate) actOnLeak(r *http.Request, k store.Key, m secretMatch, now time.Time) error {
	if k.LeakedAt.IsZero() {
		var err error
		if k, err = g.store.RecordLeak(r.Context(), k.ID, now, leakURL(m.URL)); err != nil {
			return err
		}
	}
	action := leakNotify
	if g.cfg.LeakedKeyAction == leakRevoke {
		action = leakRevoke
		var err error
		if k, err = g.store.Revoke(r.Context(), k.ID, now); err != nil {
			return err
		}
		g.keys.Forget(k.ID)
	}
	g.logRequest(r, logging.LevelNotice, "audit: key leaked",
		slog.String("action", "leak_"+action),
		slog.String("target_key_id", k.ID),
		slog.String("owner", k.Owner),
		slog.String("key_hint", k.Hint),
		slog.String("leak_url", k.LeakURL),
		slog.String("source", problem.QuoteShort(m.Source)))
	return nil
}

// getMany reads the keys ids, store.MaxGetMany at a time, all at once: by ID.
func (g *Gate) getMany(ctx context.Context, ids []string) (map[string]store.Key, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	found := make(map[string]store.Key)
	for start := 0; start < len(ids); start += store.MaxGetMany {
		batch := ids[start:min(start+store.MaxGetMany, len(ids))]
		wg.Go(func() {
			keys, err := g.store.GetMany(ctx, batch)
			mu.Lock()
			defer mu.Unlock()
			first = cmp.Or(first, err)
			for _, k := range keys {
				found[k.ID] = k
			}
		})
	}
	wg.Wait()
	return found, first
}

// leakURL is u as a key keeps it: valid UTF-8 without hidden characters,
// at most keyrules.MaxLeakURLLen bytes; u as sent when it is no http(s) URL.
func leakURL(u string) string {
	u = strings.Map(func(r rune) rune {
		if keyrules.IsHidden(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(u, ""))
	if len(u) > keyrules.MaxLeakURLLen {
		u = strings.ToValidUTF8(u[:keyrules.MaxLeakURLLen], "")
	}
	return u
}

// validKeysURL reports whether s is an http or https URL.
func validKeysURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// validLeakAction reports whether s is a LEAKED_KEY_ACTION.
func validLeakAction(s string) bool { return s == leakRevoke || s == leakNotify }
