package apikey

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// defaultSecretScanningKeysURL is where GitHub publishes the public keys
// that sign its secret scanning reports.
const defaultSecretScanningKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

const (
	// keysRefetchInterval is the most often the keys are fetched after a
	// fetch that succeeded: an unknown identifier fetches them again only
	// once it has passed. GitHub allows 60 unauthenticated API requests an
	// hour per address; a forger sending unknown identifiers costs it one a
	// minute.
	keysRefetchInterval = time.Minute
	// keysRetryMin is the wait after a fetch that failed; it doubles with
	// each failure in a row, up to keysRefetchInterval, so that a GitHub
	// that is down is not asked more than once a minute either, while a
	// single failure costs a report only a second.
	keysRetryMin = time.Second
	// maxKeysBody caps the published keys' document.
	maxKeysBody = 1 << 20
)

// keysFetchTimeout bounds one fetch of the keys. A variable for tests.
var keysFetchTimeout = 5 * time.Second

var (
	// errKeysUnavailable: no fetch could look for the identifier, or the
	// caller left before one did; the report is to be sent again.
	errKeysUnavailable = errors.New("GitHub's secret scanning keys could not be fetched")
	// errKeyNotFetched: the identifier is not among the keys last fetched,
	// and the next fetch may not start yet (a key GitHub just added, or a
	// forger's): not known to be unknown, so retry, never refused.
	errKeyNotFetched = errors.New("the key identifier is not among GitHub's keys fetched lately")
)

// signingKeys are GitHub's secret scanning public keys by identifier,
// fetched from url on first use and again when an unknown identifier
// arrives. A fetch runs on the Gate's context with its own deadline, never
// a caller's: a caller that leaves (or a forger's report dropped at once)
// ends only its own wait, and the fetch it started serves the others.
type signingKeys struct {
	ctx    context.Context // the Gate's: Close ends a fetch
	url    string
	client *http.Client
	now    func() time.Time

	// keys are those last fetched, nil before the first fetch that
	// succeeded: read without a lock, so that a report signed by a known
	// key never waits for a fetch that an unknown identifier started
	// (a forger's, or GitHub's new key while its API is slow).
	keys atomic.Pointer[map[string]*ecdsa.PublicKey]

	mu       sync.Mutex
	inflight *keysFetch    // the fetch under way; nil when none
	next     time.Time     // the earliest the next fetch may start
	retry    time.Duration // the wait after the next failure
}

// keysFetch is one fetch of the keys, shared by the callers that wait for it.
type keysFetch struct {
	done chan struct{} // closed when keys and err are set
	keys map[string]*ecdsa.PublicKey
	err  error
}

func newSigningKeys(ctx context.Context, url string, now func() time.Time) *signingKeys {
	return &signingKeys{ctx: ctx, url: url, client: &http.Client{}, now: now, retry: keysRetryMin}
}

// key returns the key with identifier id: nil if a fetch that looked for it
// found GitHub publishes none. Otherwise an error (errKeysUnavailable or
// errKeyNotFetched) and when to ask again: no fetch could look for id.
// The caller waits for a fetch at most until ctx ends.
func (s *signingKeys) key(ctx context.Context, id string) (*ecdsa.PublicKey, time.Duration, error) {
	if k, ok := s.cached(id); ok {
		return k, 0, nil
	}
	s.mu.Lock()
	if k, ok := s.cached(id); ok { // fetched while this waited for the lock
		s.mu.Unlock()
		return k, 0, nil
	}
	f := s.inflight
	if f == nil {
		if wait := s.next.Sub(s.now()); wait > 0 {
			s.mu.Unlock()
			if s.keys.Load() == nil {
				return nil, wait, errKeysUnavailable
			}
			return nil, wait, errKeyNotFetched
		}
		f = s.start()
	}
	s.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, keysRetryMin, fmt.Errorf("%w: the report's wait ended: %w", errKeysUnavailable, context.Cause(ctx))
	}
	if f.err != nil {
		s.mu.Lock()
		wait := s.next.Sub(s.now())
		s.mu.Unlock()
		return nil, max(wait, keysRetryMin), fmt.Errorf("%w: %w", errKeysUnavailable, f.err)
	}
	return f.keys[id], 0, nil
}

// start begins a fetch, under s.mu; when it ends, the next one may start
// keysRefetchInterval later if it succeeded, after the backoff if not.
func (s *signingKeys) start() *keysFetch {
	f := &keysFetch{done: make(chan struct{})}
	s.inflight = f
	go func() {
		keys, err := s.fetch(s.ctx)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.next = s.now().Add(s.retry)
			s.retry = min(2*s.retry, keysRefetchInterval)
		} else {
			s.keys.Store(&keys)
			s.next = s.now().Add(keysRefetchInterval)
			s.retry = keysRetryMin
		}
		f.keys, f.err = keys, err
		s.inflight = nil
		close(f.done)
	}()
	return f
}

// cached returns the key with identifier id among those last fetched.
func (s *signingKeys) cached(id string) (*ecdsa.PublicKey, bool) {
	if keys := s.keys.Load(); keys != nil {
		k, ok := (*keys)[id]
		return k, ok
	}
	return nil, false
}

// publishedKeys is GitHub's document of its secret scanning keys.
type publishedKeys struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// fetch reads the published keys; those that are not ECDSA P-256 keys in
// PEM are left out.
func (s *signingKeys) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, keysFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", s.url, resp.Status)
	}
	var doc publishedKeys
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxKeysBody)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("GET %s: %w", s.url, err)
	}
	keys := make(map[string]*ecdsa.PublicKey, len(doc.PublicKeys))
	for _, pk := range doc.PublicKeys {
		if k := parseP256(pk.Key); k != nil && pk.KeyIdentifier != "" {
			keys[pk.KeyIdentifier] = k
		}
	}
	return keys, nil
}

// parseP256 parses a PEM public key, or returns nil if it is not P-256.
func parseP256(p string) *ecdsa.PublicKey {
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return nil
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil
	}
	return k
}
