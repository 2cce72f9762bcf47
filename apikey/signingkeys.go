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
	// keysRefetchInterval is the most often the keys are fetched: an unknown
	// identifier fetches them again only once it has passed since the last
	// fetch. GitHub allows 60 unauthenticated API requests an hour per
	// address; a forger sending unknown identifiers costs it one a minute.
	keysRefetchInterval = time.Minute
	// maxKeysBody caps the published keys' document.
	maxKeysBody = 1 << 20
)

// keysFetchTimeout bounds one fetch of the keys. A variable for tests.
var keysFetchTimeout = 5 * time.Second

// errKeysUnavailable: the keys could not be fetched, and none is cached
// for the identifier.
var errKeysUnavailable = errors.New("GitHub's secret scanning keys could not be fetched")

// signingKeys are GitHub's secret scanning public keys by identifier,
// fetched from url on first use and again when an unknown identifier
// arrives, at most once per keysRefetchInterval.
type signingKeys struct {
	url    string
	client *http.Client
	now    func() time.Time

	// keys are those last fetched, nil before the first fetch that
	// succeeded: read without a lock, so that a report signed by a known
	// key never waits for a fetch that an unknown identifier started
	// (a forger's, or GitHub's new key while its API is slow).
	keys atomic.Pointer[map[string]*ecdsa.PublicKey]

	mu      sync.Mutex // held across a fetch: one at a time
	fetched time.Time  // of the last fetch, failed or not; zero: never
}

func newSigningKeys(url string, now func() time.Time) *signingKeys {
	return &signingKeys{url: url, client: &http.Client{}, now: now}
}

// key returns the key with identifier id: nil if GitHub does not publish
// one, errKeysUnavailable if the keys could not be fetched to find out.
func (s *signingKeys) key(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	if k, ok := s.cached(id); ok {
		return k, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.cached(id); ok { // fetched while this waited
		return k, nil
	}
	now := s.now()
	if !s.fetched.IsZero() && now.Sub(s.fetched) < keysRefetchInterval {
		if s.keys.Load() == nil {
			return nil, errKeysUnavailable
		}
		return nil, nil
	}
	s.fetched = now
	keys, err := s.fetch(ctx)
	if err != nil {
		if s.keys.Load() == nil {
			return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
		}
		return nil, nil // the cached keys stand; id is not among them
	}
	s.keys.Store(&keys)
	return keys[id], nil
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
