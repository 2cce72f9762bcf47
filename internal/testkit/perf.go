package testkit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// PerfWriter is an http.ResponseWriter that keeps nothing but the status,
// so that benchmarks measure the handler rather than a recorder. Reset it
// between requests.
type PerfWriter struct {
	h    http.Header
	Code int // the status answered
	n    int
}

// NewPerfWriter returns an empty PerfWriter.
func NewPerfWriter() *PerfWriter { return &PerfWriter{h: make(http.Header)} }

// Header implements http.ResponseWriter.
func (w *PerfWriter) Header() http.Header { return w.h }

// WriteHeader keeps the first status.
func (w *PerfWriter) WriteHeader(code int) {
	if w.Code == 0 {
		w.Code = code
	}
}

// Write counts the bytes.
func (w *PerfWriter) Write(p []byte) (int, error) {
	if w.Code == 0 {
		w.Code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

// Reset readies w for the next request.
func (w *PerfWriter) Reset() {
	clear(w.h)
	w.Code = 0
	w.n = 0
}

// GetRequest is GET / with the given key.
func GetRequest(key string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	return r
}

// ServeOnce serves r with h and fails the benchmark unless it answers want.
func ServeOnce(b *testing.B, h http.Handler, r *http.Request, want int) {
	b.Helper()
	w := NewPerfWriter()
	h.ServeHTTP(w, r)
	if w.Code != want {
		b.Fatalf("%s %s answered %d, want %d", r.Method, r.URL.Path, w.Code, want)
	}
}

// Serve serves r with h b.N times, serially.
func Serve(b *testing.B, h http.Handler, r *http.Request, want int) {
	ServeOnce(b, h, r, want) // fills the cache; also checks the answer
	w := NewPerfWriter()
	b.ReportAllocs()
	for b.Loop() {
		w.Reset()
		h.ServeHTTP(w, r)
	}
	if w.Code != want {
		b.Fatalf("answered %d, want %d", w.Code, want)
	}
}

// ServeParallel serves r with h from GOMAXPROCS goroutines; each has
// its own copy of r.
func ServeParallel(b *testing.B, h http.Handler, r *http.Request, want int) {
	ServeOnce(b, h, r, want)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := r.Clone(context.Background())
		w := NewPerfWriter()
		served := false
		for pb.Next() {
			w.Reset()
			h.ServeHTTP(w, r)
			served = true
		}
		if served && w.Code != want {
			b.Errorf("answered %d, want %d", w.Code, want)
		}
	})
}
