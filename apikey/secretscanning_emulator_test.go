package apikey

import (
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/testkit"
)

// TestSecretScanningOnEmulator: two instances on one emulator project, as
// two instances of the function. GitHub reports a live key to a; b, which
// had the key cached and is busy with it, refuses it within the change
// feed's bound, and a at once.
func TestSecretScanningOnEmulator(t *testing.T) {
	_, project := emulator.Project(t)
	gh := testkit.NewGitHub(t, "k1")
	fs := firestorestore.New(firestorestore.Config{Project: project})
	t.Cleanup(func() { fs.Close() })
	a := newRealServer(t, fs, keysFrom(gh))
	b := realInstance(t, project)
	key, k := warm(t, a, b)
	if at := busyUntilRefused(t, b, key, time.Second); !at.IsZero() {
		t.Fatal("refused before the report")
	}
	body := reportOf(leakAt, key)
	scan := &scanned{server: a, scan: a.GitHubSecretScanningHandler(), gh: gh}
	ls := labelsOf(t, scan.signed(t, body))
	reported := time.Now()
	if len(ls) != 1 || ls[0].Label != "true_positive" || ls[0].TokenHash != k.ID {
		t.Fatalf("answer %+v", ls)
	}
	if w := a.do("GET", "/", "", key); w.Code != 401 {
		t.Errorf("a answered the leaked key %d, want 401", w.Code)
	}
	refused := busyUntilRefused(t, b, key, propagationBound)
	if refused.IsZero() {
		t.Fatalf("b still accepted the key %v after the report", propagationBound)
	}
	t.Logf("b refused the key %v after the report's answer", refused.Sub(reported))
	got, err := fs.Get(t.Context(), k.ID)
	if err != nil || got.LeakURL != leakAt || got.LeakedAt.IsZero() || got.RevokedAt.IsZero() {
		t.Errorf("stored %+v, %v: want revoked and leaked at %s", got, err, leakAt)
	}
}
