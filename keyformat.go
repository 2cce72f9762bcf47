package keygate

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"strings"
	"unsafe"
)

// The key format is <prefix>_<body><checksum>:
//
//   - prefix: KEY_PREFIX, 1 to 16 lowercase ASCII letters and digits.
//   - body: 32 random bytes read as one big-endian unsigned integer, written
//     in base62 and left-padded with '0' to bodyLen characters.
//   - checksum: CRC-32 (IEEE) of the ASCII string "<prefix>_<body>", written
//     in base62 and left-padded with '0' to checksumLen characters.
//
// The base62 alphabet is digits, then upper case, then lower case.
const (
	base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	secretBytes    = 32
	bodyLen        = 43 // 62^43 > 2^256 > 62^42
	checksumLen    = 6  // 62^6 > 2^32 > 62^5
	maxPrefixLen   = 16
	// MaxKeyLen is the longest key any configuration accepts; longer header
	// values are refused before any other work.
	MaxKeyLen = maxPrefixLen + 1 + bodyLen + checksumLen
)

// ErrMalformedKey is returned by ParseKey for a string that is not a
// well-formed key of the configured prefix.
var ErrMalformedKey = errors.New("malformed API key")

// maxBody is the body of the largest secret, 2^256-1.
var maxBody = base62(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 8*secretBytes), big.NewInt(1)), bodyLen)

// base62Value maps an ASCII byte to its base62 digit value, or 0xff.
var base62Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(base62Alphabet); i++ {
		t[base62Alphabet[i]] = byte(i)
	}
	return t
}()

// ValidPrefix reports whether p can be a key prefix: 1 to 16 lowercase ASCII
// letters and digits.
func ValidPrefix(p string) bool {
	if len(p) == 0 || len(p) > maxPrefixLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// NewKey mints a key with the given prefix from 32 bytes of crypto/rand.
func NewKey(prefix string) (string, error) {
	var secret [secretBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return formatKey(prefix, secret)
}

// formatKey builds the key for prefix and secret.
func formatKey(prefix string, secret [secretBytes]byte) (string, error) {
	if !ValidPrefix(prefix) {
		return "", fmt.Errorf("invalid key prefix %q: want 1 to %d lowercase letters and digits", prefix, maxPrefixLen)
	}
	var b strings.Builder
	b.Grow(len(prefix) + 1 + bodyLen + checksumLen)
	b.WriteString(prefix)
	b.WriteByte('_')
	b.WriteString(base62(new(big.Int).SetBytes(secret[:]), bodyLen))
	sum := checksumOf(b.String())
	b.WriteString(base62(new(big.Int).SetUint64(uint64(sum)), checksumLen))
	return b.String(), nil
}

// base62 writes n in base62, left-padded with '0' to width characters.
func base62(n *big.Int, width int) string {
	out := make([]byte, width)
	for i := range out {
		out[i] = '0'
	}
	sixtyTwo := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; n.Sign() > 0 && i >= 0; i-- {
		n.DivMod(n, sixtyTwo, mod)
		out[i] = base62Alphabet[mod.Int64()]
	}
	return string(out)
}

// checksumOf is the CRC-32 (IEEE) of s, computed without copying s: the
// standard library's slicing-by-8 CRC, 4 times faster than a byte-at-a-time
// loop on a key (BENCHMARKS.md), reads s's bytes in place. ChecksumIEEE only
// reads its argument, so s stays immutable.
func checksumOf(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// ParseKey checks that key is a well-formed key with the given prefix: its
// length, prefix, alphabet and checksum. It touches neither cache nor store,
// and it does not allocate.
func ParseKey(key, prefix string) error {
	if len(key) != len(prefix)+1+bodyLen+checksumLen ||
		key[len(prefix)] != '_' || key[:len(prefix)] != prefix {
		return ErrMalformedKey
	}
	payload := len(prefix) + 1 + bodyLen
	for i := len(prefix) + 1; i < payload; i++ {
		if base62Value[key[i]] == 0xff {
			return ErrMalformedKey
		}
	}
	var sum uint64
	for i := payload; i < len(key); i++ {
		v := base62Value[key[i]]
		if v == 0xff {
			return ErrMalformedKey
		}
		sum = sum*62 + uint64(v)
	}
	if sum != uint64(checksumOf(key[:payload])) {
		return ErrMalformedKey
	}
	// The body must fit in 256 bits. The alphabet is in ASCII order, so
	// fixed-width bodies compare as numbers when compared as strings.
	if key[len(prefix)+1:payload] > maxBody {
		return ErrMalformedKey
	}
	return nil
}

// KeyDigest is the SHA-256 of a key string: the cache's lookup key.
type KeyDigest [sha256.Size]byte

// digestOf returns the SHA-256 of key. A key fits a buffer on the stack;
// []byte(key) would allocate for any string over 32 bytes.
func digestOf(key string) KeyDigest {
	var buf [MaxKeyLen]byte
	if len(key) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], key)])
	}
	return sha256.Sum256([]byte(key))
}

// ID returns the key ID: the lowercase hex SHA-256 of the key string, which is
// also the Firestore document ID.
func (d KeyDigest) ID() string { return hex.EncodeToString(d[:]) }

// KeyID returns the key ID of key: the lowercase hex SHA-256 of the whole key
// string.
func KeyID(key string) string { return digestOf(key).ID() }

// KeyHint returns the display hint of a well-formed key: the prefix, '_', the
// first 4 body characters, '…', and the last 4 characters (the checksum's).
// It reveals about 24 of the key's 256 random bits, too few to guess the
// rest.
func KeyHint(key string) string {
	i := strings.IndexByte(key, '_')
	if i < 0 || len(key) < i+1+8 {
		return ""
	}
	return key[:i+1+4] + "…" + key[len(key)-4:]
}

// ValidKeyID reports whether id has the form of a key ID: 64 lowercase hex
// digits.
func ValidKeyID(id string) bool {
	if len(id) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// MintKey mints a key with prefix and returns it with k made ready to store:
// its ID and Hint set from the new key. The key itself is shown once to its
// owner and never stored.
func MintKey(prefix string, k Key) (string, Key, error) {
	key, err := NewKey(prefix)
	if err != nil {
		return "", Key{}, err
	}
	k.ID = KeyID(key)
	k.Hint = KeyHint(key)
	return key, k, nil
}
