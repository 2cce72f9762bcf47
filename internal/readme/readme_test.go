package readme

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const doc = "# T\n\n## One\n\n```sh\necho 1\n```\n\n```\n1\n```\n\n## Two\n\n```go\nx := 2\n```\n"

// TestSection: a section ends at the next "## " heading, and its fenced
// blocks come back in order with their info strings.
func TestSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	infos, bodies := Fenced(Section(t, path, "One"))
	if want := []string{"sh", ""}; !reflect.DeepEqual(infos, want) {
		t.Errorf("infos = %q, want %q", infos, want)
	}
	if want := []string{"echo 1\n", "1\n"}; !reflect.DeepEqual(bodies, want) {
		t.Errorf("bodies = %q, want %q", bodies, want)
	}
	if infos, _ := Fenced(Section(t, path, "Two")); !reflect.DeepEqual(infos, []string{"go"}) {
		t.Errorf("section Two: infos = %q, want [go]", infos)
	}
}
