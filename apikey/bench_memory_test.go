package apikey

// Memory per cached key (issue 6, item 5): heap bytes held by a Gate's key
// cache filled through its real Lookup path, measured with
// runtime.ReadMemStats after GC, reported as B/key.

import (
	"context"
	"encoding/hex"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/logging"
)

// copyingStore returns keys whose strings are fresh copies, as a store that
// decodes them from the network (Firestore) does; a memstore.Store's keys
// share their strings with the store, which would hide them from the
// measurement.
type copyingStore struct{ store.Store }

func (s copyingStore) Get(ctx context.Context, id string) (store.Key, error) {
	k, err := s.Store.Get(ctx, id)
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

// BenchmarkCacheMemory fills the key cache of a Gate of KEY_CACHE_SIZE n
// with n keys of a memstore.Store (a realistic key: owner, name, one
// scope, hint, ID; 1,000 owners), each looked up once, and reports the heap
// it holds per key, the owners' entries in the plan cache (not yet read)
// included. "copied" gives the cache its own copy of every string, as
// Firestore does; "shared" lets it share them with the memory store.
func BenchmarkCacheMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, strs := range []string{"copied", "shared"} {
			b.Run("keys="+strconv.Itoa(n)+"/strings="+strs, func(b *testing.B) {
				mem := memstore.New()
				var s store.Store = mem
				if strs == "copied" {
					s = copyingStore{mem}
				}
				digests := make([]keyformat.Digest, n)
				ctx := context.Background()
				for i := range digests {
					digests[i][0], digests[i][1], digests[i][2], digests[i][3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
					d := digests[i]
					id := hex.EncodeToString(d[:])
					k := store.Key{ID: id, Owner: "customer-" + strconv.Itoa(i%1000), Name: "bingo-night-tablet",
						Scopes: []string{scopeThings}, Hint: "kg_" + id[:4] + "…" + id[60:], CreatedAt: t0}
					if err := mem.Create(ctx, k); err != nil {
						b.Fatal(err)
					}
				}
				cfg := testConfig(func(c *Config) { c.CacheSize = n })
				var perKey float64
				for b.Loop() {
					// The Gate, with its empty caches, is built before the
					// first measurement: only what the lookups add counts.
					g := New(cfg, s, WithLogger(logging.NewLogger(io.Discard)))
					before := heapInUse()
					for _, d := range digests {
						if _, err := g.keys.Lookup(ctx, d); err != nil {
							b.Fatal(err)
						}
					}
					after := heapInUse()
					if g.keys.Len() != n {
						b.Fatalf("cache holds %d keys, want %d", g.keys.Len(), n)
					}
					runtime.KeepAlive(g)
					perKey = (float64(after) - float64(before)) / float64(n)
					g.Close(ctx)
				}
				runtime.KeepAlive(mem)
				b.ReportMetric(perKey, "B/key")
			})
		}
	}
}
