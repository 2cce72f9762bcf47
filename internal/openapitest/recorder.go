package openapitest

import (
	"fmt"
	"sync"
)

// Recorder is a Reporter that keeps what it is told, for a test that a
// mismatch is reported: the test checks Errors and passes.
type Recorder struct {
	mu   sync.Mutex
	errs []string
}

// Helper does nothing: there is no test to mark.
func (r *Recorder) Helper() {}

// Errorf keeps the report.
func (r *Recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// Errors returns the reports so far.
func (r *Recorder) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}
