package emulator

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
// them skip, and starts no emulator even with gcloud on the PATH (a fake
// one here, which records being run); the package's line says how many
// skipped and why, unless KEYGATE_REQUIRE_EMULATOR is set too.
func TestMissingEmulator(t *testing.T) {
	const noGcloud = "FIRESTORE_EMULATOR_HOST is unset and gcloud is not on the PATH"
	const skipLine = ": SKIPPED 2 tests for want of the Firestore emulator (" + SkipEnv + "=1: none started (FIRESTORE_EMULATOR_HOST is unset))"
	for _, c := range []struct {
		name     string
		env      []string
		gcloud   bool // a fake gcloud on the PATH
		fails    bool
		contains string
		reason   string // printed once
	}{
		{"default", nil, false, true, "FIRESTORE EMULATOR NOT AVAILABLE: " + noGcloud, noGcloud},
		{"skip", []string{SkipEnv + "=1"}, false, false, skipLine, "none started"},
		{"skip with gcloud installed", []string{SkipEnv + "=1"}, true, false, skipLine, "none started"},
		{"skip but required", []string{SkipEnv + "=1", RequireEnv + "=1"}, false, true, "no Firestore emulator", noGcloud},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := t.TempDir()
			ran := filepath.Join(t.TempDir(), "gcloud-ran")
			if c.gcloud {
				script := "#!/bin/sh\ntouch " + ran + "\nexit 1\n"
				if err := os.WriteFile(filepath.Join(bin, "gcloud"), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run", "^TestChildNeedsEmulator", "-test.v")
			cmd.Env = []string{childEnv + "=1", "PATH=" + bin, "HOME=" + t.TempDir()}
			cmd.Env = append(cmd.Env, c.env...)
			// No controlling terminal: the package's line goes to the
			// output, not to the terminal.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != c.fails || !strings.Contains(string(out), c.contains) {
				t.Errorf("failed %v, want %v; output lacks %q or is:\n%s", failed, c.fails, c.contains, out)
			}
			if c.fails && !strings.Contains(string(out), SkipEnv+"=1 to skip") {
				t.Errorf("the failure does not say how to skip:\n%s", out)
			}
			if n := strings.Count(string(out), c.reason); n != 1 {
				t.Errorf("the reason is printed %d times, want once:\n%s", n, out)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Errorf("gcloud was run with %s=1:\n%s", SkipEnv, out)
			}
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "_test.go:") && len(l) > 160 {
					t.Errorf("a test's line is %d characters long: %q", len(l), l)
				}
			}
		})
	}
}
