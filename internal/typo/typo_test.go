package typo

import (
	"errors"
	"slices"
	"testing"
)

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"KEY_CACHE_TTL", "KEY_CACHE_TTL", 0},
		{"KEY_CACHE_TL", "KEY_CACHE_TTL", 1},      // a letter left out
		{"KEY_CAHCE_TTL", "KEY_CACHE_TTL", 1},     // two swapped
		{"KEY_CACHE_TTLS", "KEY_CACHE_TTL", 1},    // one too many
		{"KEY_CACHE_TIL", "KEY_CACHE_TTL", 1},     // one replaced
		{"KEY_CACHE_T", "KEY_CACHE_TTL", 2},       // two left out
		{"bingo:chek", "bingo:check", 1},          // a scope
		{"KEYS_COLLECTION", "KEY_COLLECTIONS", 2}, // one moved
		{"REDIS_HOST", "REDIS_URL", 4},            // another program's
		{"ca", "abc", 3},                          // not a swap then an insertion
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Distance(c.b, c.a); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.b, c.a, got, c.want)
		}
	}
}

func TestMeant(t *testing.T) {
	known := []string{"KEY_CACHE_TTL", "KEY_STALE_TTL", "PORT", "bingo:check", "usage:read"}
	for _, c := range []struct {
		s, want string
	}{
		{"KEY_CACHE_TL", "KEY_CACHE_TTL"},
		{"KEY_STALE_TL", "KEY_STALE_TTL"},
		{"KEY_CACHE_TTL", ""}, // known
		{"KEY_CACHE", ""},     // four edits
		{"PROT", "PORT"},      // a swap in a short name
		{"PT", ""},            // two edits in a short name: too many
		{"HOME", ""},
		{"bingo:chek", "bingo:check"},
		{"usage:reads", "usage:read"},
		{"billing", ""},
	} {
		got, ok := Meant(c.s, known)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Meant(%q) = %q, %v; want %q", c.s, got, ok, c.want)
		}
	}
}

// TestVariables: a variable one or two edits from a name load reads is
// reported with that name, sorted, once; values are never looked at, and
// names far from any are left alone.
func TestVariables(t *testing.T) {
	load := func(getenv func(string) string) (struct{}, error) {
		getenv("KEY_CACHE_TTL")
		getenv("STORE_TIMEOUT")
		return struct{}{}, errors.New("load's error changes nothing")
	}
	environ := []string{"PATH=/bin", "STORE_TIMOUT=KEY_CACHE_TTL", "KEY_CACHE_TL=5m", "KEY_CACHE_TTL=1m", "KEY_CACHE_TL=6m", "HOME=/root", "EMPTY="}
	got := Variables(environ, load)
	want := []Mistyped{{"KEY_CACHE_TL", "KEY_CACHE_TTL"}, {"STORE_TIMOUT", "STORE_TIMEOUT"}}
	if !slices.Equal(got, want) {
		t.Errorf("Variables = %v, want %v", got, want)
	}
	if s := got[0].String(); s != "KEY_CACHE_TL is set, but no variable of that name is read: did you mean KEY_CACHE_TTL?" {
		t.Errorf("String = %q", s)
	}
}
