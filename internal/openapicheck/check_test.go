package openapicheck

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that records what Check reports.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// run returns what Check reports of spec.
func run(t *testing.T, spec string) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Check(r, []byte(spec))
	}()
	<-done
	return r.errs
}

const valid = `{"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
  "paths": {"/x": {"get": {"responses": {"200": {"description": "ok",
    "content": {"application/json": {"schema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "maximum": 5}}},
      "example": {"n": EXAMPLE}}}}}}}}}`

// TestCheckFails checks that Check fails what it should, and passes the
// rest: a test that cannot fail proves nothing.
func TestCheckFails(t *testing.T) {
	if errs := run(t, strings.Replace(valid, "EXAMPLE", "3", 1)); len(errs) != 0 {
		t.Errorf("a valid document: %v", errs)
	}
	for name, spec := range map[string]string{
		"an example over its maximum":      strings.Replace(valid, "EXAMPLE", "6", 1),
		"an example of another type":       strings.Replace(valid, "EXAMPLE", `"3"`, 1),
		"a response without a description": strings.Replace(strings.Replace(valid, "EXAMPLE", "3", 1), `"description": "ok",`, "", 1),
		"a wrong version":                  strings.Replace(strings.Replace(valid, "EXAMPLE", "3", 1), "3.1.0", "3.0.3", 1),
		"a reference to nothing":           strings.Replace(strings.Replace(valid, "EXAMPLE", "3", 1), `"type": "integer"`, `"$ref": "#/components/schemas/Nothing"`, 1),
	} {
		if errs := run(t, spec); len(errs) == 0 {
			t.Errorf("%s: passed", name)
		} else {
			t.Logf("%s: %s", name, errs[0])
		}
	}
}
