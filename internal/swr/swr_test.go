package swr

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// source is a data source that counts its reads; down makes them fail,
// and release, when set, holds each read until it is closed.
type source struct {
	values  map[string]int
	reads   atomic.Int64
	down    atomic.Bool
	release chan struct{}
	prevs   []*int // the prev of each read
	mu      sync.Mutex
}

var errDown = errors.New("source down")

func (s *source) refresh(ctx context.Context, key string, prev *int) (int, bool, error) {
	s.reads.Add(1)
	s.mu.Lock()
	s.prevs = append(s.prevs, prev)
	s.mu.Unlock()
	if s.release != nil {
		<-s.release
	}
	if s.down.Load() {
		return 0, false, errDown
	}
	v, ok := s.values[key]
	return v, ok, nil
}

func newCache(t *testing.T) (*Cache[string, int], *clock, *source) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	c := New[string, int](Options{Size: 10, Misses: 10, Fresh: time.Minute, Stale: 10 * time.Minute,
		Negative: 30 * time.Second, Backoff: time.Second, Wait: time.Second, Now: clk.Now})
	return c, clk, &source{values: map[string]int{"a": 1}}
}

// TestWindows walks a value and a missing key through the windows, with
// the reads each step makes (background ones waited for).
func TestWindows(t *testing.T) {
	type step struct {
		advance   time.Duration
		down      bool
		key       string
		want      int
		wantFound bool
		wantErr   error
		reads     int64 // reads so far
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"fresh: one read", []step{
			{0, false, "a", 1, true, nil, 1},
			{59 * time.Second, false, "a", 1, true, nil, 1},
		}},
		{"stale: served, read in the background, at most once per backoff", []step{
			{0, false, "a", 1, true, nil, 1},
			{time.Minute, false, "a", 1, true, nil, 2},
			{time.Minute + 500*time.Millisecond, false, "a", 1, true, nil, 3},
		}},
		{"source down: stale value served on within the stale window", []step{
			{0, false, "a", 1, true, nil, 1},
			{5 * time.Minute, true, "a", 1, true, nil, 2},
			{4 * time.Minute, true, "a", 1, true, nil, 3},
		}},
		{"source down: past the stale window, the read's error", []step{
			{0, false, "a", 1, true, nil, 1},
			{10 * time.Minute, true, "a", 0, false, errDown, 2},
		}},
		{"negative: not found for the negative window, then read again", []step{
			{0, false, "nope", 0, false, nil, 1},
			{29 * time.Second, false, "nope", 0, false, nil, 1},
			{time.Second, false, "nope", 0, false, nil, 2},
		}},
		{"negative: a failed read is not remembered", []step{
			{0, true, "nope", 0, false, errDown, 1},
			{0, true, "nope", 0, false, errDown, 2},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cache, clk, src := newCache(t)
			for i, s := range c.steps {
				clk.Advance(s.advance)
				src.down.Store(s.down)
				v, found, err := cache.Get(t.Context(), s.key, clk.Now(), src.refresh)
				cache.WaitReads()
				if v != s.want || found != s.wantFound || !errors.Is(err, s.wantErr) {
					t.Errorf("step %d: Get = %v, %v, %v; want %v, %v, %v", i, v, found, err, s.want, s.wantFound, s.wantErr)
				}
				if n := src.reads.Load(); n != s.reads {
					t.Errorf("step %d: %d reads, want %d", i, n, s.reads)
				}
			}
		})
	}
}

// TestReadGetsPrev checks that a read is given the value last read.
func TestReadGetsPrev(t *testing.T) {
	c, clk, src := newCache(t)
	c.Get(t.Context(), "a", clk.Now(), src.refresh)
	clk.Advance(time.Minute)
	c.Get(t.Context(), "a", clk.Now(), src.refresh)
	c.WaitReads()
	if src.prevs[0] != nil || src.prevs[1] == nil || *src.prevs[1] != 1 {
		t.Errorf("prevs = %v, want nil then 1", src.prevs)
	}
}

// TestConcurrentCallersShareOneRead: 50 callers of an uncached key wait
// for one read, and all get its answer.
func TestConcurrentCallersShareOneRead(t *testing.T) {
	c, clk, src := newCache(t)
	src.release = make(chan struct{})
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for range 50 {
		wg.Go(func() {
			if v, found, err := c.Get(t.Context(), "a", clk.Now(), src.refresh); v != 1 || !found || err != nil {
				wrong.Add(1)
			}
		})
	}
	for src.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the others join
	close(src.release)
	wg.Wait()
	if n := src.reads.Load(); n != 1 {
		t.Errorf("%d reads, want 1", n)
	}
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d callers got a wrong answer", n)
	}
}

// TestWaitBounded: a read that hangs is waited for at most Wait, or until
// the caller's context ends; it still caches its answer.
func TestWaitBounded(t *testing.T) {
	c, clk, src := newCache(t)
	src.release = make(chan struct{})
	start := time.Now()
	if _, _, err := c.Get(t.Context(), "a", clk.Now(), src.refresh); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hanging read = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("waited %v, want about Wait (1s)", d)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := c.Get(ctx, "a", clk.Now(), src.refresh); !errors.Is(err, context.Canceled) {
		t.Errorf("ended context = %v, want Canceled", err)
	}
	close(src.release)
	c.WaitReads()
	if v, found, _ := c.Cached("a", clk.Now(), src.refresh); !found || v != 1 {
		t.Errorf("the read waited out was not cached: %v, %v", v, found)
	}
}

// TestForgetDuringRead: a read under way when its key is forgotten gives
// its callers its answer but does not cache it; the next Get reads again.
func TestForgetDuringRead(t *testing.T) {
	c, clk, src := newCache(t)
	src.release = make(chan struct{})
	done := make(chan struct{})
	go func() {
		c.Get(context.Background(), "a", clk.Now(), src.refresh)
		close(done)
	}()
	for src.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.Forget("a")
	close(src.release)
	<-done
	c.WaitReads()
	if _, hit, _ := c.Cached("a", clk.Now(), src.refresh); hit {
		t.Error("a read under way when its key was forgotten cached what it read")
	}
	src.release = nil
	c.Get(t.Context(), "a", clk.Now(), src.refresh)
	if n := src.reads.Load(); n != 2 {
		t.Errorf("%d reads, want 2", n)
	}
}

// TestRevalidate: after Revalidate, a value is read again before it is
// served, through the LRU or a handle, with itself as prev; a read that
// fails serves it on; a key not found is forgotten; a read under way does
// not cache what it read.
func TestRevalidate(t *testing.T) {
	c, clk, src := newCache(t)
	var h Handle[int]
	ctx := t.Context()
	c.Get(ctx, "a", clk.Now(), src.refresh)
	c.GetVia(ctx, &h, "a", clk.Now(), src.refresh)
	c.Get(ctx, "nope", clk.Now(), src.refresh)
	c.Revalidate()
	for _, k := range []string{"a", "nope"} {
		if _, hit, _ := c.Cached(k, clk.Now(), src.refresh); hit {
			t.Errorf("%s: a hit after Revalidate", k)
		}
	}
	src.values["a"] = 2
	if v, _, _ := c.GetVia(ctx, &h, "a", clk.Now(), src.refresh); v != 2 {
		t.Errorf("through the handle after Revalidate: %d, want 2", v)
	}
	if p := src.prevs[len(src.prevs)-1]; p == nil || *p != 1 {
		t.Errorf("the read after Revalidate had prev %v, want the cached 1", p)
	}
	if _, hit, _ := c.Cached("a", clk.Now(), src.refresh); !hit {
		t.Error("no hit once read again")
	}
	reads := src.reads.Load()
	c.Revalidate()
	src.down.Store(true)
	if v, found, err := c.Get(ctx, "a", clk.Now(), src.refresh); v != 2 || !found || err != nil {
		t.Errorf("the source down after Revalidate: Get = %d, %v, %v; want the cached 2", v, found, err)
	}
	src.down.Store(false)
	if n := src.reads.Load() - reads; n != 1 {
		t.Errorf("%d reads, want 1", n)
	}

	// A read under way when Revalidate is called caches nothing.
	src.release = make(chan struct{})
	c.Revalidate()
	src.values["a"] = 3
	done := make(chan struct{})
	go func() {
		c.Get(ctx, "a", clk.Now(), src.refresh)
		close(done)
	}()
	for src.reads.Load() == reads+1 {
		time.Sleep(time.Millisecond)
	}
	c.Revalidate()
	close(src.release)
	<-done
	c.WaitReads()
	if _, hit, _ := c.Cached("a", clk.Now(), src.refresh); hit {
		t.Error("a read under way at Revalidate cached what it read")
	}
}

// TestMissesApart: a flood of missing keys evicts no value.
func TestMissesApart(t *testing.T) {
	c, clk, src := newCache(t)
	c.Get(t.Context(), "a", clk.Now(), src.refresh)
	for i := range 100 {
		c.Get(t.Context(), string(rune('b'+i)), clk.Now(), src.refresh)
	}
	if _, _, found := c.Cached("a", clk.Now(), src.refresh); !found {
		t.Error("a flood of missing keys evicted a value")
	}
}

// TestHitsDoNotAllocate: a fresh hit, and a stale hit that starts no read,
// cost no allocation.
func TestHitsDoNotAllocate(t *testing.T) {
	c, clk, src := newCache(t)
	refresh := Refresh[string, int](src.refresh)
	c.Get(t.Context(), "a", clk.Now(), refresh)
	if n := testing.AllocsPerRun(100, func() { c.Cached("a", clk.Now(), refresh) }); n != 0 {
		t.Errorf("fresh hit: %v allocations, want 0", n)
	}
	clk.Advance(time.Minute)
	c.Cached("a", clk.Now(), refresh) // starts the one read of this second
	if n := testing.AllocsPerRun(100, func() { c.Cached("a", clk.Now(), refresh) }); n != 0 {
		t.Errorf("stale hit: %v allocations, want 0", n)
	}
	c.WaitReads()
}

// TestServeStaleHook: a failed read that leaves a value in service says so,
// with the value's age; one past the stale window does not.
func TestServeStaleHook(t *testing.T) {
	c, clk, src := newCache(t)
	var told []time.Duration
	c.ServeStale = func(key string, v int, age time.Duration, err error) {
		if key != "a" || v != 1 || !errors.Is(err, errDown) {
			t.Errorf("ServeStale(%q, %v, %v, %v)", key, v, age, err)
		}
		told = append(told, age)
	}
	c.Get(t.Context(), "a", clk.Now(), src.refresh)
	src.down.Store(true)
	clk.Advance(2 * time.Minute)
	c.Get(t.Context(), "a", clk.Now(), src.refresh)
	c.WaitReads()
	clk.Advance(10 * time.Minute)
	c.Get(t.Context(), "a", clk.Now(), src.refresh)
	if len(told) != 1 || told[0] != 2*time.Minute {
		t.Errorf("ServeStale told %v, want [2m0s]", told)
	}
}

// TestWait is the three ends of Wait.
func TestWait(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		done chan struct{}
		want error
	}{
		{"done", context.Background(), closed, nil},
		{"timer", context.Background(), make(chan struct{}), context.DeadlineExceeded},
		{"context", ended, make(chan struct{}), context.Canceled},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := Wait(c.ctx, c.done, 10*time.Millisecond); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("Wait = %v, want %v", err, c.want)
			}
		})
	}
}

// TestHandle: a handle finds its entry without the LRU while it is cached,
// and looks the key up again once the entry is replaced, forgotten or
// evicted.
func TestHandle(t *testing.T) {
	c, clk, src := newCache(t)
	var h Handle[int]
	refresh := Refresh[string, int](src.refresh) // a method value made per call allocates
	ctx := t.Context()
	get := func() int {
		t.Helper()
		v, found, err := c.GetVia(ctx, &h, "a", clk.Now(), refresh)
		if !found || err != nil {
			t.Fatalf("GetVia = %v, %v, %v", v, found, err)
		}
		return v
	}
	get()
	if n := testing.AllocsPerRun(100, func() { get() }); n != 0 {
		t.Errorf("a hit through a handle: %v allocations, want 0", n)
	}
	src.values["a"] = 2
	clk.Advance(time.Minute)
	get() // stale: read in the background, which replaces the entry
	c.WaitReads()
	if v := get(); v != 2 {
		t.Errorf("after a refresh, through the handle: %d, want 2", v)
	}
	src.values["a"] = 3
	c.Forget("a")
	if v := get(); v != 3 {
		t.Errorf("after Forget, through the handle: %d, want 3", v)
	}
	src.values["a"] = 4
	for i := range 10 { // evicts a: Size is 10
		src.values[string(rune('b'+i))] = i
		c.Get(t.Context(), string(rune('b'+i)), clk.Now(), src.refresh)
	}
	if v := get(); v != 4 {
		t.Errorf("after an eviction, through the handle: %d, want 4", v)
	}
	if n := src.reads.Load(); n != 14 {
		t.Errorf("%d reads, want 14", n)
	}
}

// TestLoadAfterARaceLost: a caller that missed just before another's read
// cached its answer (Cached said miss; the read then ended) gets that
// answer from Load, without a second read; a key found missing likewise.
func TestLoadAfterARaceLost(t *testing.T) {
	c, _, src := newCache(t)
	for _, key := range []string{"a", "gone"} {
		if _, hit, _ := c.Cached(key, time.Time{}, src.refresh); hit {
			t.Fatalf("%s: hit before any read", key)
		}
		_, wantFound, _ := c.Load(t.Context(), key, src.refresh) // the other caller's read
		before := src.reads.Load()
		v, found, err := c.Load(t.Context(), key, src.refresh) // the caller that missed
		if err != nil || found != wantFound || (found && v != 1) {
			t.Errorf("%s: Load = %d, %v, %v; want the cached answer", key, v, found, err)
		}
		if n := src.reads.Load() - before; n != 0 {
			t.Errorf("%s: Load after a read ended made %d more reads, want 0", key, n)
		}
	}
}
