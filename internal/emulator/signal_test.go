package emulator

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdEnv names the file where TestChildHoldsEmulator, run as a child
// `go test`, says that it holds the emulator.
const holdEnv = "KEYGATE_EMULATOR_TEST_HOLD"

// TestChildHoldsEmulator is not a test: TestInterruptStopsEmulator runs it
// in a child `go test`, where it holds the emulator until interrupted.
func TestChildHoldsEmulator(t *testing.T) {
	ready := os.Getenv(holdEnv)
	if ready == "" {
		t.Skip("run by TestInterruptStopsEmulator only")
	}
	Host(t)
	if err := os.WriteFile(ready, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Minute) // until SIGINT
}

// TestInterruptStopsEmulator runs `go test` of a package whose tests use
// the emulator, with none running, and interrupts it mid-run as Ctrl-C
// does (SIGINT to its whole process group), then SIGTERM in a second run:
// no emulator process is left either way.
func TestInterruptStopsEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two emulators: not with -short")
	}
	if _, err := exec.LookPath("gcloud"); err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatal("gcloud is not on the PATH")
		}
		t.Skip("SKIPPED: gcloud is not on the PATH, so no test starts an emulator")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			ready := filepath.Join(dir, "ready")
			cmd := exec.Command("go", "test", "-count=1", "-v", "-run", "^TestChildHoldsEmulator$", ".")
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "FIRESTORE_EMULATOR_HOST=") {
					env = append(env, kv)
				}
			}
			cmd.Env = append(env, childEnv+"=1", holdEnv+"="+ready, DirEnv+"="+filepath.Join(dir, "shared"))
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's foreground group of its own
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
			for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
				if _, err := os.Stat(ready); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the child never held the emulator:\n%s", out.String())
				}
			}
			pgid, host, ok := readState(filepath.Join(dir, "shared"))
			if !ok || !alive(-pgid) {
				t.Fatalf("the child's emulator is not recorded, or not running (%d %s):\n%s", pgid, host, out.String())
			}
			syscall.Kill(-cmd.Process.Pid, sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("go test did not end on %v:\n%s", sig, out.String())
			}
			for deadline := time.Now().Add(15 * time.Second); alive(-pgid); time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) {
					syscall.Kill(-pgid, syscall.SIGKILL)
					t.Fatalf("%v to go test left the emulator's process group %d running (%s):\n%s", sig, pgid, host, out.String())
				}
			}
			if waitReady(host, time.Second, nil) == nil {
				t.Errorf("something still answers at the emulator's address %s", host)
			}
		})
	}
}
