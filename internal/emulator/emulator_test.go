package emulator

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// childEnv marks this test binary run as a child by TestMissingEmulator.
const childEnv = "KEYGATE_EMULATOR_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(Main(m))
	}
	os.Exit(m.Run())
}

// TestChildNeedsEmulator is a test that needs the emulator; it runs only
// in the child.
func TestChildNeedsEmulator(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run as a child by TestMissingEmulator")
	}
	Host(t)
}

// TestChildNeedsEmulatorToo is a second one, for the counts.
func TestChildNeedsEmulatorToo(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run as a child by TestMissingEmulator")
	}
	Host(t)
}

// TestMissingEmulator: without gcloud and FIRESTORE_EMULATOR_HOST, a test
// that needs the emulator fails: the package's banner says why and what to
// do, once, and each test in one short line. KEYGATE_SKIP_EMULATOR=1 makes
// them skip, and the package says how many skipped and why, unless
// KEYGATE_REQUIRE_EMULATOR is set too.
func TestMissingEmulator(t *testing.T) {
	for _, c := range []struct {
		name     string
		env      []string
		fails    bool
		contains string
	}{
		{"default", nil, true, "FIRESTORE EMULATOR NOT AVAILABLE: FIRESTORE_EMULATOR_HOST is unset and gcloud is not on the PATH"},
		{"skip", []string{SkipEnv + "=1"}, false, "2 tests SKIPPED (" + SkipEnv + "=1): no Firestore emulator: FIRESTORE_EMULATOR_HOST is unset and gcloud is not on the PATH"},
		{"skip but required", []string{SkipEnv + "=1", RequireEnv + "=1"}, true, "no Firestore emulator"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestChildNeedsEmulator", "-test.v")
			cmd.Env = []string{childEnv + "=1", "PATH=" + t.TempDir(), "HOME=" + t.TempDir()}
			cmd.Env = append(cmd.Env, c.env...)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != c.fails || !strings.Contains(string(out), c.contains) {
				t.Errorf("failed %v, want %v; output lacks %q or is:\n%s", failed, c.fails, c.contains, out)
			}
			if c.fails && !strings.Contains(string(out), SkipEnv+"=1 to skip") {
				t.Errorf("the failure does not say how to skip:\n%s", out)
			}
			if n := strings.Count(string(out), "gcloud is not on the PATH"); n != 1 {
				t.Errorf("the reason is printed %d times, want once:\n%s", n, out)
			}
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "_test.go:") && len(l) > 120 {
					t.Errorf("a test's line is %d characters long: %q", len(l), l)
				}
			}
		})
	}
}
