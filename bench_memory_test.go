package keygate

// Memory per cached key (issue 6, item 5): heap bytes held by a KeyCache
// filled through its real Lookup path, measured with runtime.ReadMemStats
// after GC, reported as B/key.

import (
	"context"
	"encoding/hex"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// copyingStore returns keys whose strings are fresh copies, as a store that
// decodes them from the network (Firestore) does; a MemoryStore's keys share
// their strings with the store, which would hide them from the measurement.
type copyingStore struct{ store.KeyStore }

func (s copyingStore) Get(ctx context.Context, id string) (store.Key, error) {
	k, err := s.KeyStore.Get(ctx, id)
	k.ID, k.Owner, k.Name, k.Hint = strings.Clone(k.ID), strings.Clone(k.Owner), strings.Clone(k.Name), strings.Clone(k.Hint)
	for i := range k.Scopes {
		k.Scopes[i] = strings.Clone(k.Scopes[i])
	}
	return k, err
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	var m runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkCacheMemory fills a KeyCache of KEY_CACHE_SIZE n with n keys of a
// MemoryStore (a realistic key: owner, name, one scope, hint, ID), each
// looked up once, and reports the heap it holds per key. "copied" gives the
// cache its own copy of every string, as Firestore does; "shared" lets it
// share them with the MemoryStore.
func BenchmarkCacheMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, strs := range []string{"copied", "shared"} {
			b.Run("keys="+strconv.Itoa(n)+"/strings="+strs, func(b *testing.B) {
				mem := memstore.New()
				var store store.KeyStore = mem
				if strs == "copied" {
					store = copyingStore{mem}
				}
				digests := make([]keyformat.Digest, n)
				ctx := context.Background()
				for i := range digests {
					digests[i][0], digests[i][1], digests[i][2], digests[i][3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
					d := digests[i]
					id := hex.EncodeToString(d[:])
					k := store.Key{ID: id, Owner: "customer-" + strconv.Itoa(i%1000), Name: "bingo-night-tablet",
						Scopes: []string{ScopeBingoCheck}, Hint: "kg_" + id[:4] + "…" + id[60:], CreatedAt: t0}
					if err := mem.Create(ctx, k); err != nil {
						b.Fatal(err)
					}
				}
				cfg := DefaultConfig()
				cfg.CacheSize = n
				var perKey float64
				for b.Loop() {
					before := heapInUse()
					c := NewKeyCache(cfg, store, time.Now, logging.NewLogger(io.Discard))
					for _, d := range digests {
						if _, err := c.Lookup(ctx, d); err != nil {
							b.Fatal(err)
						}
					}
					after := heapInUse()
					if c.Len() != n {
						b.Fatalf("cache holds %d keys, want %d", c.Len(), n)
					}
					runtime.KeepAlive(c)
					perKey = (float64(after) - float64(before)) / float64(n)
				}
				runtime.KeepAlive(mem)
				b.ReportMetric(perKey, "B/key")
			})
		}
	}
}
