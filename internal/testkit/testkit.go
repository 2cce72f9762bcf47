// Package testkit holds the test fixtures that keygate's packages share: a
// fake clock, a log buffer, key minting, a store that fails or hangs on
// demand, the stores every contract runs on, and problem decoders.
package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/apikey/storetest"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/problem"
)

// T0 is the fake clock's start.
var T0 = storetest.T0

// FakeClock is a clock that moves only when told.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a clock at T0.
func NewFakeClock() *FakeClock { return &FakeClock{now: T0} }

// Now is the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d ahead.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes: a log sink.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Logger returns a Cloud Logging logger writing to a buffer.
func Logger() (*slog.Logger, *SyncBuffer) {
	buf := &SyncBuffer{}
	return logging.NewLogger(buf), buf
}

// MintKey mints and stores a key for owner, created at T0 with prefix
// "kg", changed by change; it returns the key and the key as stored.
var MintKey = storetest.MintKey

// ErrStoreDown is what a FaultyStore that is down returns.
var ErrStoreDown = errors.New("store is down")

// FaultyStore wraps a Store, counts its Get and Changes calls, and can be
// made to fail or to hang until its context ends: Get with Down and Hang,
// Changes (the change feed) apart, with ChangesDown and ChangesHang.
type FaultyStore struct {
	store.Store
	Gets    atomic.Int64
	Down    atomic.Bool
	Hang    atomic.Bool
	Release chan struct{} // when not nil, Get waits for it to close

	ChangeReads atomic.Int64 // calls of Changes
	ChangesDown atomic.Bool
	ChangesHang atomic.Bool
}

// Get implements store.KeyStore.
func (s *FaultyStore) Get(ctx context.Context, id string) (store.Key, error) {
	s.Gets.Add(1)
	if s.Release != nil {
		<-s.Release
	}
	if s.Hang.Load() {
		<-ctx.Done()
		return store.Key{}, ctx.Err()
	}
	if s.Down.Load() {
		return store.Key{}, ErrStoreDown
	}
	return s.Store.Get(ctx, id)
}

// Changes implements store.ChangeStore.
func (s *FaultyStore) Changes(ctx context.Context, after store.ChangeCursor, limit int) ([]store.Change, store.ChangeCursor, error) {
	s.ChangeReads.Add(1)
	if s.ChangesHang.Load() {
		<-ctx.Done()
		return nil, after, ctx.Err()
	}
	if s.ChangesDown.Load() {
		return nil, after, ErrStoreDown
	}
	return s.Store.Changes(ctx, after, limit)
}

// EmulatorStore returns a Firestore store on the emulator, in a project of
// the test's own; the test skips without an emulator (fails when
// KEYGATE_REQUIRE_EMULATOR is set). The package's TestMain must call
// emulator.Main.
func EmulatorStore(t testing.TB) *firestorestore.Store {
	t.Helper()
	_, project := emulator.Project(t)
	s := firestorestore.New(firestorestore.Config{Project: project})
	t.Cleanup(func() { s.Close() })
	return s
}

// Stores are the store implementations every contract runs on: memory, and
// Firestore on the emulator.
var Stores = []struct {
	Name string
	New  func(t testing.TB) store.Store
}{
	{"memory", func(t testing.TB) store.Store { return memstore.New() }},
	{"firestore", func(t testing.TB) store.Store { return EmulatorStore(t) }},
}

// ForEachStore runs f as a subtest on each of Stores.
func ForEachStore(t *testing.T, f func(t *testing.T, s store.Store)) {
	for _, impl := range Stores {
		t.Run(impl.Name, func(t *testing.T) { f(t, impl.New(t)) })
	}
}

// Problem decodes a problem response, failing the test if it is not one.
func Problem(t testing.TB, w *httptest.ResponseRecorder) problem.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, w.Body)
	}
	var p problem.Problem
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body %s: %v", w.Body, err)
	}
	if p.Status != w.Code || p.Type != problem.TypePrefix+p.Code || p.Title != http.StatusText(w.Code) || p.Detail == "" {
		t.Errorf("problem %+v does not match status %d, or lacks a detail", p, w.Code)
	}
	return p
}

// WantProblem checks a problem answer's status and code, and returns it.
func WantProblem(t testing.TB, w *httptest.ResponseRecorder, status int, code string) problem.Problem {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	p := Problem(t, w)
	if p.Code != code {
		t.Fatalf("code = %s, want %s", p.Code, code)
	}
	return p
}

// MustJSON decodes an answer of status want into v.
func MustJSON(t testing.TB, w *httptest.ResponseRecorder, want int, v any) {
	t.Helper()
	if w.Code != want {
		t.Fatalf("status = %d, want %d; body %s", w.Code, want, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("body %s: %v", w.Body, err)
	}
}

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }
