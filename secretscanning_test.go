package keygate

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/testkit"
)

// TestSecretScanningBeforeKeyCheck: GitHub's reports reach the endpoint at
// SecretScanningPath without a key, the signature checked against the keys
// at GITHUB_SECRET_SCANNING_KEYS_URL; a signed report of a live key revokes
// it, an unsigned one is refused 401 and changes nothing.
func TestSecretScanningBeforeKeyCheck(t *testing.T) {
	gh := testkit.NewGitHub(t, "k1")
	h, s := newRoutes(t, map[string]string{"GITHUB_SECRET_SCANNING_KEYS_URL": gh.URL})
	key, k := testkit.MintKey(t, s, "acme")
	body := `[{"token":"` + key + `","type":"keygate_api_key","url":"https://github.com/o/r/blob/x/a.go","source":"commit"}]`
	post := func(sign bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", SecretScanningPath, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json") // as GitHub sends it
		if sign {
			r.Header.Set("Github-Public-Key-Identifier", "k1")
			r.Header.Set("Github-Public-Key-Signature", gh.Sign(t, "k1", []byte(body)))
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
