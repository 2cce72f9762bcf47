package keygate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/internal/testkit"
)

// TestSecretScanningBeforeKeyCheck: GitHub's reports reach the endpoint at
// SecretScanningPath without a key, the signature checked against the keys
// at GITHUB_SECRET_SCANNING_KEYS_URL; a signed report of a live key revokes
// it, an unsigned one is refused 401 and changes nothing.
func TestSecretScanningBeforeKeyCheck(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	published := fmt.Sprintf(`{"public_keys":[{"key_identifier":"k1","key":%q,"is_current":true}]}`,
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(published)) }))
	defer gh.Close()
	cfg, err := LoadConfig(func(name string) string {
		if name == "GITHUB_SECRET_SCANNING_KEYS_URL" {
			return gh.URL
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	s := memstore.New()
	log, _ := testkit.Logger()
	g := apikey.New(cfg, s, apikey.WithClock(testkit.NewFakeClock().Now), apikey.WithLogger(log))
	t.Cleanup(func() { g.Close(context.Background()) })
	h := Handler(g)
	key, k := testkit.MintKey(t, s, "acme")
	body := `[{"token":"` + key + `","type":"keygate_api_key","url":"https://github.com/o/r/blob/x/a.go","source":"commit"}]`
	post := func(sign bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", SecretScanningPath, strings.NewReader(body))
		if sign {
			digest := sha256.Sum256([]byte(body))
			sig, _ := ecdsa.SignASN1(rand.Reader, priv, digest[:])
			r.Header.Set("Github-Public-Key-Identifier", "k1")
			r.Header.Set("Github-Public-Key-Signature", base64.StdEncoding.EncodeToString(sig))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	testkit.WantProblem(t, post(false), 401, "missing_signature")
	if w := serve(h, "GET", "/", "", key); w.Code != 200 {
		t.Fatalf("after an unsigned report the key answered %d, want 200", w.Code)
	}
	if w := serve(h, "GET", SecretScanningPath, "", ""); w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET %s = %d, Allow %q; want 405, POST", SecretScanningPath, w.Code, w.Header().Get("Allow"))
	}
	var labels []struct{ TokenHash, Label string }
	w := post(true)
	if err := json.Unmarshal(w.Body.Bytes(), &labels); w.Code != 200 || err != nil || len(labels) != 1 {
		t.Fatalf("signed report = %d %s", w.Code, w.Body)
	}
	if !strings.Contains(w.Body.String(), `"token_hash":"`+k.ID+`"`) || !strings.Contains(w.Body.String(), `"label":"true_positive"`) {
		t.Errorf("answer %s, want true_positive with the key's SHA-256", w.Body)
	}
	if w := serve(h, "GET", "/", "", key); w.Code != 401 {
		t.Errorf("the leaked key answered %d, want 401", w.Code)
	}
}
