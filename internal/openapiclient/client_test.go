package openapiclient

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate"
)

// TestGeneratedClientCurrent: openapi.json is the function's document and
// client.gen.go what oapi-codegen makes of it now, else go generate was
// not run after a change.
func TestGeneratedClientCurrent(t *testing.T) {
	doc, err := keygate.Document("X-API-Key")
	if err != nil {
		t.Fatal(err)
	}
	if committed, err := os.ReadFile("openapi.json"); err != nil || !bytes.Equal(committed, doc) {
		t.Errorf("openapi.json is not the function's document (%v): run go generate ./internal/openapiclient", err)
	}
	dir := t.TempDir()
	cfg, err := os.ReadFile("oapi-codegen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "client.gen.go")
	cfg = []byte(strings.Replace(string(cfg), "output: client.gen.go", "output: "+out, 1))
	if err := os.WriteFile(filepath.Join(dir, "cfg.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(spec, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("go", "tool", "oapi-codegen", "-config", filepath.Join(dir, "cfg.yaml"), spec).CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile("client.gen.go"); err != nil || !bytes.Equal(got, want) {
		t.Errorf("client.gen.go is stale (%v): run go generate ./internal/openapiclient", err)
	}
}
