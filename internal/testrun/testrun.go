// Package testrun says, in one line per test package, what its tests ran
// against and what they skipped for want of it (the Firestore emulator,
// Chromium, redis-server): a newcomer's `go test ./...` prints a plain "ok"
// over a passing package, skipped tests or not.
//
// The line goes where it is seen: to the terminal (/dev/tty), since go test
// shows a passing package's output only with -v; with no terminal (CI), to
// stderr, which -v and a failure show; and, when SummaryEnv names a file,
// appended to it too, which .ci/run prints after the tests. A run that
// skipped a test is never cached by go test (Skip), so that "ok (cached)"
// always stands for a run that skipped nothing, and a cached run cannot
// pass for one with everything it needs.
package testrun

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// SummaryEnv names a file that each package's line is appended to.
const SummaryEnv = "KEYGATE_TEST_SUMMARY"

// The things tests need, in the order the line names them.
const (
	Emulator = "the Firestore emulator"
	PubSub   = "the Pub/Sub emulator"
	Chromium = "Chromium"
	Redis    = "redis-server"
	Stripe   = "stripe-mock"
)

var order = []string{Emulator, PubSub, Chromium, Redis, Stripe}

// need is what the tests of this process did about one thing they need:
// the tests that had it, those that skipped without it, and why.
type need struct {
	used, skipped map[string]bool // test names: one count per test
	why           string
}

var (
	mu    sync.Mutex
	needs = map[string]*need{} // keyed by the names above: bounded
)

func record(t testing.TB, what string, skipped bool, why string) {
	mu.Lock()
	defer mu.Unlock()
	n := needs[what]
	if n == nil {
		n = &need{used: map[string]bool{}, skipped: map[string]bool{}}
		needs[what] = n
	}
	if skipped {
		n.skipped[t.Name()] = true
		n.why = why
	} else {
		n.used[t.Name()] = true
	}
}

// Used records that t ran with what.
func Used(t testing.TB, what string) { record(t, what, false, "") }

// Skip records that t skips for want of what, and why, and skips it, in
// one short line: the package's line says why, once.
func Skip(t testing.TB, what, why string) {
	t.Helper()
	record(t, what, true, why)
	uncached()
	t.Skipf("SKIPPED: needs %s; the package's %q line says why", what, "keygate tests:")
}

// skippedFile, in the module's root, is what a run that skipped opens so
// that go test does not cache it (uncached).
const skippedFile = ".keygate-test-skipped"

// uncached keeps go test from caching this run: go test caches no run that
// opened a file of the module changed in the last 2 seconds (its mtime
// might not show the next change), and this one was changed just now.
// Files outside the module do not count, hence one in it (git ignores it).
func uncached() {
	root, _ := module()
	if root == "" {
		return
	}
	name := filepath.Join(root, skippedFile)
	if os.WriteFile(name, []byte(time.Now().String()+"\n"), 0o600) != nil {
		return // a read-only module: this run may be cached
	}
	if f, err := os.Open(name); err == nil {
		f.Close()
	}
}

// Main runs m and reports: the TestMain of a package whose tests need
// Chromium or redis-server but not the emulator (emulator.Main reports
// too): os.Exit(testrun.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	Report()
	return code
}

// Line is this package's summary: what its tests ran with, and what they
// skipped, for want of what, and why.
func Line() string {
	mu.Lock()
	defer mu.Unlock()
	var ran, skipped []string
	for _, what := range order {
		n := needs[what]
		if n == nil {
			continue
		}
		if len(n.used) > 0 {
			ran = append(ran, fmt.Sprintf("%s with %s", tests(len(n.used)), what))
		}
		if len(n.skipped) > 0 {
			skipped = append(skipped, fmt.Sprintf("%s for want of %s (%s)", tests(len(n.skipped)), what, n.why))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "keygate tests: %s, run at %s: ", pkg(), time.Now().UTC().Format("15:04:05 UTC"))
	switch {
	case ran == nil && skipped == nil:
		b.WriteString("none needed " + strings.Join(order[:len(order)-1], ", ") + " or " + order[len(order)-1])
	case ran != nil:
		b.WriteString("ran " + strings.Join(ran, ", "))
	}
	if skipped != nil {
		if ran != nil {
			b.WriteString("; ")
		}
		b.WriteString("SKIPPED " + strings.Join(skipped, ", "))
	}
	return b.String()
}

func tests(n int) string {
	if n == 1 {
		return "1 test"
	}
	return fmt.Sprintf("%d tests", n)
}

// pkg is the test's package, its import path.
func pkg() string {
	root, path := module()
	wd, err := os.Getwd()
	if root == "" || err != nil {
		return filepath.Base(wd)
	}
	rel, _ := filepath.Rel(root, wd)
	return strings.TrimSuffix(path+"/"+filepath.ToSlash(rel), "/.")
}

// module returns the root directory of the test's module and its path
// (go.mod's module line), or "" outside a module.
func module() (root, path string) {
	wd, err := os.Getwd()
	if err != nil {
		return "", ""
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for l := range strings.Lines(string(mod)) {
				if p, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
					return dir, strings.TrimSpace(p)
				}
			}
			return dir, ""
		}
		if filepath.Dir(dir) == dir {
			return "", ""
		}
	}
}

// Report writes Line to the terminal, or else to stderr, and appends it
// to the file SummaryEnv names. Call it after m.Run: go test no longer
// records what the test opens, so the terminal does not count as an input
// of a cached run.
func Report() {
	line := Line() + "\n"
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		tty.WriteString(line)
		tty.Close()
	} else {
		os.Stderr.WriteString(line)
	}
	if name := os.Getenv(SummaryEnv); name != "" {
		if f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			f.WriteString(line) // one write of a short line: whole, among other packages'
			f.Close()
		}
	}
}

// reset forgets what was recorded, for this package's tests.
func reset() {
	mu.Lock()
	defer mu.Unlock()
	clear(needs)
}
