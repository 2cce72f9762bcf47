package keygate

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// errStoreDown is what a downed testStore returns.
var errStoreDown = errors.New("store is down")

// testStore wraps a KeyStore, counts its Get calls, and can be made to fail
// or to hang until its context ends.
type testStore struct {
	store.KeyStore
	gets    atomic.Int64
	down    atomic.Bool
	hang    atomic.Bool
	release chan struct{} // when not nil, Get waits for it to close
}

func (s *testStore) Get(ctx context.Context, id string) (store.Key, error) {
	s.gets.Add(1)
	if s.release != nil {
		<-s.release
	}
	if s.hang.Load() {
		<-ctx.Done()
		return store.Key{}, ctx.Err()
	}
	if s.down.Load() {
		return store.Key{}, errStoreDown
	}
	return s.KeyStore.Get(ctx, id)
}

// testConfig is the default configuration with the given changes.
func testConfig(change ...func(*Config)) Config {
	c := DefaultConfig()
	for _, f := range change {
		f(&c)
	}
	return c
}

// mintTestKey mints and stores a key for owner, changed by change.
func mintTestKey(t testing.TB, store store.KeyStore, owner string, change ...func(*store.Key)) (string, store.Key) {
	t.Helper()
	tmpl := store.Key{Owner: owner, Name: owner + "-key", CreatedAt: t0}
	for _, f := range change {
		f(&tmpl)
	}
	key, k, err := store.Mint("kg", tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return key, store.Stored(k)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes: a log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testLogger returns a Cloud Logging logger writing to a buffer.
func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return logging.NewLogger(buf), buf
}
