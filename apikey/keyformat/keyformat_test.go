package keyformat

import (
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

// The test vectors of the README, computed independently (Python's int and
// zlib.crc32) from the documented algorithm.
var keyVectors = []struct {
	name   string
	secret [secretBytes]byte
	key    string
}{
	{"bytes 0x00..0x1f", func() (s [secretBytes]byte) {
		for i := range s {
			s[i] = byte(i)
		}
		return s
	}(), "kg_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf4DqIjo"},
	{"all 0xff", func() (s [secretBytes]byte) {
		for i := range s {
			s[i] = 0xff
		}
		return s
	}(), "kg_yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp11l6iTA"},
	{"all zero", [secretBytes]byte{}, "kg_00000000000000000000000000000000000000000003j9wpc"},
}

func TestKeyFormatVectors(t *testing.T) {
	for _, v := range keyVectors {
		t.Run(v.name, func(t *testing.T) {
			got, err := formatKey("kg", v.secret)
			if err != nil {
				t.Fatal(err)
			}
			if got != v.key {
				t.Errorf("formatKey = %s, want %s", got, v.key)
			}
			if err := Parse(v.key, "kg"); err != nil {
				t.Errorf("Parse(%s) = %v", v.key, err)
			}
		})
	}
	const wantID = "cdef46ad8c1926f1e2efa9fa637bd48d870cffb86ac984055520ce1d20d5ae7c"
	if id := ID(keyVectors[0].key); id != wantID {
		t.Errorf("ID = %s, want %s", id, wantID)
	}
	if h := Hint(keyVectors[0].key); h != "kg_003a…qIjo" {
		t.Errorf("Hint = %s", h)
	}
}

func TestNewKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := New("acme1")
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != len("acme1_")+BodyLen+ChecksumLen {
			t.Fatalf("len(%s) = %d", k, len(k))
		}
		if err := Parse(k, "acme1"); err != nil {
			t.Fatalf("Parse(%s) = %v", k, err)
		}
		if seen[k] {
			t.Fatalf("New repeated %s", k)
		}
		seen[k] = true
		if !ValidID(ID(k)) {
			t.Fatalf("ID(%s) = %s is not a valid ID", k, ID(k))
		}
	}
	if _, err := New("Bad_Prefix"); err == nil {
		t.Error("New accepted an invalid prefix")
	}
}

func TestParseKeyRejects(t *testing.T) {
	good := keyVectors[0].key
	flip := func(i int, c byte) string { b := []byte(good); b[i] = c; return string(b) }
	cases := []struct{ name, key string }{
		{"empty", ""},
		{"prefix only", "kg_"},
		{"other prefix", "xx" + good[2:]},
		{"no underscore", "kg-" + good[3:]},
		{"one short", good[:len(good)-1]},
		{"one long", good + "0"},
		{"very long", strings.Repeat("a", 10000)},
		{"bad char in body", flip(10, '-')},
		{"non-ASCII in body", good[:10] + "é" + good[12:]},
		{"bad char in checksum", flip(len(good)-1, '!')},
		{"changed body char", flip(10, 'z')},
		{"changed checksum", flip(len(good)-1, '0')},
		{"body over 2^256", func() string {
			p := "kg_" + strings.Repeat("z", BodyLen)
			s := base62FromUint(uint64(checksumOf(p)))
			return p + s
		}()},
		{"whitespace", " " + good[1:]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := Parse(c.key, "kg"); !errors.Is(err, ErrMalformedKey) {
				t.Errorf("Parse(%q) = %v, want ErrMalformedKey", c.key, err)
			}
		})
	}
}

func base62FromUint(n uint64) string {
	b := make([]byte, ChecksumLen)
	for i := ChecksumLen - 1; i >= 0; i-- {
		b[i] = base62Alphabet[n%62]
		n /= 62
	}
	return string(b)
}

func TestChecksumMatchesCRC32(t *testing.T) {
	for _, s := range []string{"", "kg_", keyVectors[0].key, strings.Repeat("xyz", 100)} {
		if got, want := checksumOf(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Errorf("checksumOf(%q) = %x, want %x", s, got, want)
		}
	}
}

func TestParseKeyDoesNotAllocate(t *testing.T) {
	key := keyVectors[0].key
	if n := testing.AllocsPerRun(100, func() { _ = Parse(key, "kg") }); n != 0 {
		t.Errorf("Parse allocates %v times", n)
	}
}

func TestValidPrefixAndID(t *testing.T) {
	for p, want := range map[string]bool{"kg": true, "a": true, "abcdefghij012345": true, "abcdefghij0123456": false, "": false, "KG": false, "k_g": false, "k-g": false} {
		if ValidPrefix(p) != want {
			t.Errorf("ValidPrefix(%q) = %v", p, !want)
		}
	}
	id := ID("x")
	for s, want := range map[string]bool{id: true, strings.ToUpper(id): false, id[1:]: false, id + "0": false, "../" + id[3:]: false} {
		if ValidID(s) != want {
			t.Errorf("ValidID(%q) = %v", s, !want)
		}
	}
}

// FuzzParseKey checks that Parse never panics, that what it accepts has
// the documented form, and that minted keys always parse.
func FuzzParseKey(f *testing.F) {
	for _, v := range keyVectors {
		f.Add(v.key)
	}
	f.Add("")
	f.Add("kg_")
	f.Add("kg_" + strings.Repeat("0", BodyLen+ChecksumLen))
	f.Fuzz(func(t *testing.T, s string) {
		if Parse(s, "kg") != nil {
			return
		}
		if len(s) != 3+BodyLen+ChecksumLen || !strings.HasPrefix(s, "kg_") {
			t.Fatalf("accepted %q of the wrong shape", s)
		}
		for _, c := range s[3:] {
			if !strings.ContainsRune(base62Alphabet, c) {
				t.Fatalf("accepted %q with %q", s, c)
			}
		}
		if got := base62FromUint(uint64(crc32.ChecksumIEEE([]byte(s[:3+BodyLen])))); got != s[3+BodyLen:] {
			t.Fatalf("accepted %q with checksum %s, want %s", s, s[3+BodyLen:], got)
		}
	})
}
