package emulator

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The test processes of one machine share the emulator one of them starts:
// a `go test ./...` runs packages in parallel, and each would otherwise
// start a JVM of its own. They meet in a directory (DirEnv, else
// keygate-emulator-UID in os.TempDir()) that holds, under an flock on its
// lock file, the emulator's process group and address ("state") and one
// file per process that uses it ("users/PID"). The last user to leave,
// at exit or on SIGINT or SIGTERM, stops the emulator's process group; a
// user that died without leaving (SIGKILL) is pruned by the next one, and
// an emulator that died is replaced.
const DirEnv = "KEYGATE_EMULATOR_DIR"

// sharedDir is the directory where the processes meet.
func sharedDir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("keygate-emulator-%d", os.Getuid()))
}

// lease is this process's use of the shared emulator.
var lease struct {
	mu       sync.Mutex
	dir      string
	pgid     int  // the emulator's process group, or 0
	starting bool // pgid is started but not yet registered
	held     bool // users/PID exists
}

// locked runs f while holding the directory's lock.
func locked(dir string, f func() error) error {
	if err := os.MkdirAll(filepath.Join(dir, "users"), 0o700); err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

// readState returns the emulator's process group and address, if recorded.
func readState(dir string) (pgid int, host string, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, "state"))
	if err != nil {
		return 0, "", false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, "", false
	}
	pgid, err = strconv.Atoi(f[0])
	return pgid, f[1], err == nil && pgid > 0
}

// alive reports whether a process (or, with a negative pid, a process
// group) exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// users returns the PIDs of the processes that use the emulator, after
// removing those that died.
func users(dir string) []int {
	entries, _ := os.ReadDir(filepath.Join(dir, "users"))
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			os.Remove(filepath.Join(dir, "users", e.Name()))
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// acquire returns the address of the shared emulator, started with gcloud
// if no live one is recorded, and registers this process as its user.
func acquire(gcloud string) (string, error) {
	dir := sharedDir()
	var h string
	err := locked(dir, func() error {
		if pgid, host, ok := readState(dir); ok && alive(-pgid) && waitReady(host, 2*time.Second, nil) == nil {
			h = host
			return register(dir, pgid)
		}
		// None, or a dead one: its users are gone with it.
		if pgid, _, ok := readState(dir); ok {
			killGroup(pgid)
		}
		os.RemoveAll(filepath.Join(dir, "users"))
		os.MkdirAll(filepath.Join(dir, "users"), 0o700)
		os.Remove(filepath.Join(dir, "state"))
		port, err := freePort()
		if err != nil {
			return err
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(gcloud, "emulators", "firestore", "start", "--host-port="+host, "--quiet")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting the emulator: %w", err)
		}
		lease.mu.Lock()
		lease.pgid, lease.starting = cmd.Process.Pid, true
		lease.mu.Unlock()
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if err := waitReady(host, 90*time.Second, exited); err != nil {
			killGroup(cmd.Process.Pid)
			return fmt.Errorf("emulator on %s: %w; its output:\n%s", host, err, out.String())
		}
		if err := os.WriteFile(filepath.Join(dir, "state"), fmt.Appendf(nil, "%d %s\n", cmd.Process.Pid, host), 0o600); err != nil {
			killGroup(cmd.Process.Pid)
			return err
		}
		h = host
		return register(dir, cmd.Process.Pid)
	})
	return h, err
}

// register records this process as a user of the emulator in group pgid.
func register(dir string, pgid int) error {
	lease.mu.Lock()
	defer lease.mu.Unlock()
	lease.dir, lease.pgid, lease.starting = dir, pgid, false
	if err := os.WriteFile(filepath.Join(dir, "users", strconv.Itoa(os.Getpid())), nil, 0o600); err != nil {
		return err
	}
	lease.held = true
	return nil
}

// release ends this process's use of the shared emulator, and stops it if
// no other process uses it. It may be called more than once.
func release() {
	lease.mu.Lock()
	defer lease.mu.Unlock()
	if lease.starting { // interrupted while it started: ours alone
		killGroup(lease.pgid)
		lease.starting = false
		return
	}
	if !lease.held {
		return
	}
	lease.held = false
	dir := lease.dir
	locked(dir, func() error {
		os.Remove(filepath.Join(dir, "users", strconv.Itoa(os.Getpid())))
		if len(users(dir)) > 0 {
			return nil
		}
		if pgid, _, ok := readState(dir); ok {
			killGroup(pgid)
		}
		os.Remove(filepath.Join(dir, "state"))
		return nil
	})
}

// killGroup stops process group pgid: SIGTERM, then SIGKILL after 10 s.
func killGroup(pgid int) {
	syscall.Kill(-pgid, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); alive(-pgid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			return
		}
	}
}

// releaseOnSignal releases the emulator, and stops the Pub/Sub emulators
// of this process, when the process gets SIGINT (Ctrl-C reaches every
// process of the terminal's group, but not the emulators' own groups) or
// SIGTERM, and then dies of the signal, as it would have. It installs its
// handler once.
var releaseOnSignal = sync.OnceFunc(func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		release()
		stopPubSubs()
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	}()
})
