package things

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
)

// mint mints a key with the keygate CLI, a tool of this module
// (go get -tool github.com/keygate/keygate/cmd/apikey), on the emulator.
func mint(t *testing.T, scopes string) string {
	t.Helper()
	out, err := exec.Command("go", "tool", "apikey", "create", "--owner", "acme", "--scopes", scopes).Output()
	if err != nil {
		t.Fatalf("apikey create: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestThingsOnEmulator runs the function as it is deployed, the entry
// point init registers, its Gate from the environment, on Firestore (the
// emulator), with keys minted by the CLI. TestThings needs none of it.
func TestThingsOnEmulator(t *testing.T) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		t.Skip("SKIPPED: set FIRESTORE_EMULATOR_HOST to run the function on the Firestore emulator")
	}
	things := apikey.Function(Routes)
	cases := []struct {
		name, key string
		want      int
	}{
		{"key with things:read", mint(t, "things:read"), 200},
		{"no key", "", 401},
		{"bad key", "kg_not-a-key", 401},
		{"key without things:read", mint(t, "other:scope"), 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if c.key != "" {
				r.Header.Set("X-API-Key", c.key)
			}
			w := httptest.NewRecorder()
			things(w, r)
			if w.Code != c.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, c.want, w.Body)
			}
			if c.want == 200 && !strings.Contains(w.Body.String(), "acme's things") {
				t.Errorf("body %s does not name the owner acme", w.Body)
			}
		})
	}
}
