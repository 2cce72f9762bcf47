// Package lruutil holds what the LRUs share.
package lruutil

import "sync"

// Cache is what the LRUs (golang-lru's Cache and expirable.LRU)
// have in common.
type Cache[K comparable, V any] interface {
	Get(K) (V, bool)
	Add(K, V) bool
}

// GetOrAdd returns c's value for k, adding newV() if there is none. mu
// serializes the adds, so that concurrent first uses of k share one value:
// two buckets for one owner would let it through twice. The hit is
// lock-free, and newV is called only on a miss.
func GetOrAdd[K comparable, V any](c Cache[K, V], mu *sync.Mutex, k K, newV func() V) V {
	if v, ok := c.Get(k); ok {
		return v
	}
	mu.Lock()
	defer mu.Unlock()
	if v, ok := c.Get(k); ok {
		return v
	}
	v := newV()
	c.Add(k, v)
	return v
}
