// Package examples tests the example modules under examples/ as their users
// would build them: each copied out of this repository, with its replace
// directive pointed at this checkout.
package examples

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/emulator"
)

func TestMain(m *testing.M) {
	os.Exit(emulator.Main(m))
}

// TestProtectOutsideRepo builds examples/protect, a Cloud Function of its
// own, in a directory outside this repository, and runs its tests on the
// emulator: a key minted with the CLI reaches its handler; no key, a bad
// key and a key without the scope get 401, 401 and 403.
func TestProtectOutsideRepo(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go on the PATH")
	}
	host := emulator.Host(t)
	checkout, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("protect")); err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(dir, "go.mod")
	b, err := os.ReadFile(mod)
	if err != nil {
		t.Fatal(err)
	}
	const rel = "=> ../.."
	if !bytes.Contains(b, []byte(rel)) {
		t.Fatalf("examples/protect/go.mod has no %q replace directive", rel)
	}
	if err := os.WriteFile(mod, bytes.Replace(b, []byte(rel), []byte("=> "+checkout), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "test", "-count=1", "-v", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FIRESTORE_EMULATOR_HOST="+host, "GOOGLE_CLOUD_PROJECT=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in a copy of examples/protect: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestThings/key_with_things:read", "--- PASS: TestThings/no_key",
		"--- PASS: TestThings/bad_key", "--- PASS: TestThings/key_without_things:read"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the example's tests did not report %q:\n%s", want, out)
		}
	}
}

// TestReadmeShowsProtect checks that the README's "Protect your own
// function" section shows examples/protect/function.go as it is.
func TestReadmeShowsProtect(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("protect/function.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("```go\n"+string(src)+"```\n")) {
		t.Error("README.md does not show examples/protect/function.go verbatim in a ```go block")
	}
}
