package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
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
	Down      atomic.Bool  // answer the requests 500 while set
	mu        sync.Mutex
	held      chan struct{}                // while not nil, requests wait for it to close (Hold)
	arrived   chan struct{}                // a request is waiting on held
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
		held, arrived := gh.held, gh.arrived
		gh.mu.Unlock()
		if held != nil {
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-held
		}
		if gh.Down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
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

// Hold makes the requests for the published keys wait until release is
// called, or the test ends; arrived receives when one is waiting.
func (gh *GitHub) Hold(t testing.TB) (arrived <-chan struct{}, release func()) {
	gh.mu.Lock()
	defer gh.mu.Unlock()
	held, arr := make(chan struct{}), make(chan struct{}, 1)
	gh.held, gh.arrived = held, arr
	var once sync.Once
	release = func() {
		once.Do(func() {
			gh.mu.Lock()
			gh.held, gh.arrived = nil, nil
			gh.mu.Unlock()
			close(held)
		})
	}
	t.Cleanup(release) // before the server's Close, which waits for the held
	return arr, release
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

// PublicKey is the public key of the pair id.
func (gh *GitHub) PublicKey(id string) *ecdsa.PublicKey {
	gh.mu.Lock()
	defer gh.mu.Unlock()
	return &gh.keys[id].PublicKey
}

// Sign is the signature of body by the key id, as GitHub sends it in the
// Github-Public-Key-Signature header: low-S, the one of the two (r, s) and
// (r, N−s) that a Gate accepts.
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
	if r, s := ParseSignature(t, sig); s.Cmp(new(big.Int).Rsh(elliptic.P256().Params().N, 1)) > 0 {
		sig = MarshalSignature(t, r, s.Sub(elliptic.P256().Params().N, s))
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// HighS is the twin (r, N−s) of the signature sig, base64 as Sign returns it:
// it verifies as well, and is high-S when sig is low-S.
func HighS(t testing.TB, sig string) string {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	r, s := ParseSignature(t, der)
	return base64.StdEncoding.EncodeToString(MarshalSignature(t, r, s.Sub(elliptic.P256().Params().N, s)))
}

// ParseSignature is the (r, s) of an ASN.1 DER ECDSA signature.
func ParseSignature(t testing.TB, der []byte) (r, s *big.Int) {
	t.Helper()
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) > 0 {
		t.Fatalf("signature not DER: %v", err)
	}
	return sig.R, sig.S
}

// MarshalSignature is (r, s) in ASN.1 DER.
func MarshalSignature(t testing.TB, r, s *big.Int) []byte {
	t.Helper()
	der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		t.Fatal(err)
	}
	return der
}
