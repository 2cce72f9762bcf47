package keygate

import (
	"os"
	"strings"
	"testing"
)

// TestReferenceDocumentsEveryVariable: the configuration table of
// docs/reference.md has a row for every variable the function reads
// (LoadConfig).
func TestReferenceDocumentsEveryVariable(t *testing.T) {
	doc, err := os.ReadFile("docs/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	if _, err := LoadConfig(func(name string) string { read[name] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	for v := range read {
		if !strings.Contains(string(doc), "\n| `"+v+"` |") {
			t.Errorf("docs/reference.md's configuration table has no row for %s", v)
		}
	}
}
