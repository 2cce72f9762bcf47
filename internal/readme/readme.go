// Package readme finds a section of a Markdown file and its fenced blocks,
// and matches output against a block, for the tests that run what the
// README tells a reader to run: one parser, so that the tests of examples/
// and cmd/local read the README alike.
package readme

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Section returns the section of the Markdown file at path under
// "## title", up to the next "## "; it fails t if there is none.
func Section(t testing.TB, path, title string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", path, title)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	return sec
}

var fence = regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```")

// Fenced returns the fenced blocks of md in order, with their info strings
// ("sh", "go", or "" for a plain block).
func Fenced(md string) (infos, bodies []string) {
	for _, m := range fence.FindAllStringSubmatch(md, -1) {
		infos, bodies = append(infos, m[1]), append(bodies, m[2])
	}
	return infos, bodies
}

// Pattern turns an output block into a regexp: the text as it is, "..."
// standing for anything on its line.
func Pattern(out string) *regexp.Regexp {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		lines = append(lines, "^"+strings.ReplaceAll(regexp.QuoteMeta(l), `\.\.\.`, ".*")+"\r?$") // curl -i keeps the CR of HTTP lines
	}
	return regexp.MustCompile("(?m)\\A" + strings.Join(lines, "\n") + "\\n?\\z")
}
