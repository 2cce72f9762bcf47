package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// GitHub stands in for GitHub's secret scanning: P-256 key pairs made by
// the test, their public keys published in GitHub's format at URL, and
// reports signed with them.
type GitHub struct {
	*httptest.Server
	Fetches   atomic.Int64 // the requests for the published keys
	mu        sync.Mutex
	keys      map[string]*ecdsa.PrivateKey // by identifier
	published []string                     // the identifiers published
}

// NewGitHub returns a GitHub that publishes a key under each of ids; it is
// closed when the test ends.
func NewGitHub(t testing.TB, ids ...string) *GitHub {
	t.Helper()
	gh := &GitHub{keys: make(map[string]*ecdsa.PrivateKey)}
	for _, id := range ids {
		gh.AddKey(t, id, true)
	}
	gh.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gh.Fetches.Add(1)
		gh.mu.Lock()
		defer gh.mu.Unlock()
		type publicKey struct {
			KeyIdentifier string `json:"key_identifier"`
			Key           string `json:"key"`
			IsCurrent     bool   `json:"is_current"`
		}
		var doc struct {
			PublicKeys []publicKey `json:"public_keys"`
		}
		for _, id := range gh.published {
			der, err := x509.MarshalPKIXPublicKey(&gh.keys[id].PublicKey)
			if err != nil {
				panic(err)
			}
			doc.PublicKeys = append(doc.PublicKeys, publicKey{id, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), true})
		}
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(gh.Close)
	return gh
}

// AddKey makes a key pair with identifier id, published or not (a forger's).
func (gh *GitHub) AddKey(t testing.TB, id string, publish bool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	gh.mu.Lock()
	defer gh.mu.Unlock()
	gh.keys[id] = k
	if publish {
		gh.published = append(gh.published, id)
	}
}

// Sign is the signature of body by the key id, as GitHub sends it in the
// Github-Public-Key-Signature header.
func (gh *GitHub) Sign(t testing.TB, id string, body []byte) string {
	t.Helper()
	gh.mu.Lock()
	k := gh.keys[id]
	gh.mu.Unlock()
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}
