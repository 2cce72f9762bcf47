package testrun

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// childEnv makes TestChildSkips skip ("skip") or pass ("pass"), in the
// child `go test` of TestSkippedRunIsNotCached.
const childEnv = "KEYGATE_TESTRUN_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(Main(m))
	}
	os.Exit(m.Run())
}

// TestLine: the line names the package and, per thing needed, how many
// tests ran with it and how many skipped without it and why, each test
// counted once however often it asks.
func TestLine(t *testing.T) {
	reset()
	t.Cleanup(reset)
	if got := Line(); !strings.Contains(got, "keygate tests: github.com/keygate/keygate/internal/testrun, run at ") ||
		!strings.HasSuffix(got, ": none needed the Firestore emulator, the Pub/Sub emulator, Chromium, redis-server or stripe-mock") {
		t.Errorf("Line with nothing needed = %q", got)
	}
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			Used(t, Emulator)
			Used(t, Emulator)
			Used(t, Chromium)
		})
	}
	t.Run("c", func(t *testing.T) { Skip(t, Redis, "not on the PATH") })
	t.Run("d", func(t *testing.T) { Skip(t, Redis, "not on the PATH") })
	want := ": ran 2 tests with the Firestore emulator, 2 tests with Chromium; SKIPPED 2 tests for want of redis-server (not on the PATH)"
	if got := Line(); !strings.HasSuffix(got, want) {
		t.Errorf("Line = %q, want it to end with %q", got, want)
	}
}

// TestChildSkips is not a test: TestSkippedRunIsNotCached runs it in a
// child `go test`, where it skips or passes.
func TestChildSkips(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		t.Skip("run by TestSkippedRunIsNotCached only")
	case "skip":
		Skip(t, Redis, "a child's reason")
	}
	Used(t, Redis)
}

// TestSkippedRunIsNotCached runs a test that skips twice with go test:
// the second run runs it again, not "(cached)", and prints the line again;
// a test that passes is cached the second time, as go test does, so the
// difference is Skip's.
func TestSkippedRunIsNotCached(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test: not with -short")
	}
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, c := range []struct {
		mode     string
		cached   bool
		contains string
	}{
		{"skip", false, "SKIPPED 1 test for want of redis-server (a child's reason)"},
		{"pass", true, "ran 1 test with redis-server"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			var outs []string
			for range 2 {
				cmd := exec.Command(goCmd, "test", "-v", "-run", "^TestChildSkips$", ".")
				// Its line is not this run's: kept out of the run's summary.
				cmd.Env = append(os.Environ(), childEnv+"="+c.mode, "GOFLAGS=", SummaryEnv+"=")
				// No controlling terminal: the line goes to stderr, which
				// -v shows (and go test caches).
				cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("go test: %v\n%s", err, out)
				}
				outs = append(outs, string(out))
			}
			if !strings.Contains(outs[0], c.contains) {
				t.Errorf("the first run's output lacks %q:\n%s", c.contains, outs[0])
			}
			if cached := strings.Contains(outs[1], "(cached)"); cached != c.cached {
				t.Errorf("the second run is cached: %v, want %v:\n%s", cached, c.cached, outs[1])
			}
		})
	}
}
