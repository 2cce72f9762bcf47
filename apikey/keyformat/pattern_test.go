package keyformat

import (
	"regexp"
	"strings"
	"testing"
)

// TestPattern: the pattern finds minted keys, alone and in code, and
// rejects near-misses: another prefix, a character too few or too many,
// a character outside base62, a longer word.
func TestPattern(t *testing.T) {
	if got, want := Pattern("kg"), `\bkg_[0-9A-Za-z]{49}\b`; got != want {
		t.Errorf("Pattern(kg) = %s, want %s", got, want)
	}
	for _, prefix := range []string{"kg", "acme2"} {
		re := regexp.MustCompile(Pattern(prefix))
		for range 200 {
			key, err := New(prefix)
			if err != nil {
				t.Fatal(err)
			}
			for _, text := range []string{key, `const apiKey = "` + key + `";`, "X-API-Key: " + key + "\n", "KEY=" + key} {
				if got := re.FindString(text); got != key {
					t.Fatalf("%s in %q: found %q", Pattern(prefix), text, got)
				}
			}
		}
		key, _ := New(prefix)
		for _, miss := range []string{
			"x" + key,                         // a longer word
			key + "A",                         // one character too many
			key[:len(key)-1],                  // one too few
			strings.Replace(key, "_", "-", 1), // another separator
			"zz" + key[len(prefix):],          // another prefix
			key[:10] + "-" + key[11:],         // outside base62
			strings.ToUpper(prefix) + key[len(prefix):],
		} {
			if re.MatchString(miss) {
				t.Errorf("%s matches the near-miss %q", Pattern(prefix), miss)
			}
		}
	}
}
