package keygate

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestMarkdownLinks: every relative link in every *.md of the repository
// names a file or directory that exists, and its #anchor a heading of that
// file, slugged as GitHub does.
func TestMarkdownLinks(t *testing.T) {
	for _, p := range brokenLinks(t, os.DirFS("."), "testdata") {
		t.Error(p)
	}
}

// TestMarkdownLinksCheck: the check finds each kind of broken link in a
// fixture, and none of the good ones.
func TestMarkdownLinksCheck(t *testing.T) {
	got := brokenLinks(t, os.DirFS("testdata/linkcheck"), "")
	want := []string{
		"README.md: #no-such-heading: no such heading in README.md",
		"README.md: docs/other.md#no-such-part: no such heading in docs/other.md",
		"README.md: missing.md: no such file",
	}
	if !slices.Equal(got, want) {
		t.Errorf("broken links found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

var (
	fencedBlock = regexp.MustCompile("(?ms)^ {0,3}(```|~~~).*?^ {0,3}```[ \t]*$")
	inlineCode  = regexp.MustCompile("`[^`\n]*`")
	mdLink      = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLink     = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s+(\S+)`)
	heading     = regexp.MustCompile(`(?m)^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$`)
	linkText    = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

// brokenLinks checks the *.md files of fsys (but those under skip) and
// returns one line per broken link.
func brokenLinks(t *testing.T, fsys fs.FS, skip string) []string {
	t.Helper()
	anchors := map[string]map[string]bool{} // by file
	anchorsOf := func(name string) map[string]bool {
		if a, ok := anchors[name]; ok {
			return a
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		a := map[string]bool{}
		seen := map[string]int{}
		for _, m := range heading.FindAllStringSubmatch(fencedBlock.ReplaceAllString(string(b), ""), -1) {
			s := slug(m[1])
			if n := seen[s]; n > 0 {
				a[fmt.Sprintf("%s-%d", s, n)] = true
			} else {
				a[s] = true
			}
			seen[s]++
		}
		anchors[name] = a
		return a
	}
	var broken []string
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (name == skip || strings.HasPrefix(d.Name(), ".") && name != "." || d.Name() == "node_modules") {
			return fs.SkipDir
		}
		if d.IsDir() || filepath.Ext(name) != ".md" {
			return nil
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		text := inlineCode.ReplaceAllString(fencedBlock.ReplaceAllString(string(b), ""), "")
		var targets []string
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		for _, m := range refLink.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		for _, target := range targets {
			if strings.Contains(target, ":") && !strings.HasPrefix(target, "#") { // a URL: https:, mailto:
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			dest := name
			if file != "" {
				dest = path.Join(path.Dir(name), file)
				st, err := fs.Stat(fsys, dest)
				if err != nil {
					broken = append(broken, fmt.Sprintf("%s: %s: no such file", name, target))
					continue
				}
				if st.IsDir() {
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(dest, ".md") && !anchorsOf(dest)[anchor] {
				broken = append(broken, fmt.Sprintf("%s: %s: no such heading in %s", name, target, dest))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return broken
}

// slug is GitHub's anchor of a heading: its text as rendered (links as
// their text, no code marks), lowercased, with every character but
// letters, digits, '_', '-' and spaces removed, and each space a '-'.
func slug(h string) string {
	h = linkText.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
