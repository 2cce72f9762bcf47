// Package emulator runs the tests of a package against the real Firestore
// emulator: the one named by FIRESTORE_EMULATOR_HOST, or else one it starts
// with gcloud on a free port and stops when the tests end.
package emulator

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing emulator from
// a skip into a failure; .ci/run sets it.
const RequireEnv = "KEYGATE_REQUIRE_EMULATOR"

var (
	projects atomic.Int64 // projects handed out by Project

	host   string // host:port of the running emulator, or ""
	reason string // why there is none
)

// Main starts the emulator if need be, runs the tests and stops it. Call it
// from TestMain: os.Exit(emulator.Main(m)).
func Main(m *testing.M) int {
	flag.Parse()
	if run := flag.Lookup("test.run"); run != nil && run.Value.String() == "^$" {
		// Benchmarks only (go test -run '^$' -bench ...): no test needs the
		// emulator, and its JVM would compete with them for the CPUs.
		reason = "not started: no tests selected (-run '^$')"
		return m.Run()
	}
	stop, err := start()
	if err != nil {
		reason = err.Error()
		fmt.Fprintf(os.Stderr, "\n!!! FIRESTORE EMULATOR NOT AVAILABLE: %s\n!!! The Firestore-backed tests will SKIP (set %s=1 to make them fail).\n\n", reason, RequireEnv)
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	return code
}

// Project returns the emulator's host:port and a project ID of the test's
// own, so that tests never see each other's documents, in this process or in
// another one on the same emulator. Without an emulator the test skips, or
// fails when RequireEnv is set.
func Project(t testing.TB) (host, project string) {
	t.Helper()
	return Host(t), fmt.Sprintf("demo-kg-%d-%d", os.Getpid(), projects.Add(1))
}

// Host returns the emulator's host:port for a test that needs it. Without an
// emulator the test skips, or fails when RequireEnv is set.
func Host(t testing.TB) string {
	t.Helper()
	if host == "" {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("Firestore emulator required (%s is set) but not available: %s", RequireEnv, reason)
		}
		t.Skipf("SKIPPED: Firestore emulator not available: %s", reason)
	}
	return host
}

// Reset deletes every document of project's default database.
func Reset(host, project string) error {
	url := "http://" + host + "/emulator/v1/projects/" + project + "/databases/(default)/documents"
	req, err := http.NewRequest(http.MethodDelete, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("DELETE %s: %s", url, resp.Status)
	}
	return nil
}

// start finds or starts the emulator and sets FIRESTORE_EMULATOR_HOST for the
// tests; stop is nil when it did not start one.
func start() (stop func(), err error) {
	if h := os.Getenv("FIRESTORE_EMULATOR_HOST"); h != "" {
		if err := waitReady(h, 5*time.Second, nil); err != nil {
			return nil, fmt.Errorf("FIRESTORE_EMULATOR_HOST=%s does not answer: %w", h, err)
		}
		host = h
		return nil, nil
	}
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return nil, errors.New("FIRESTORE_EMULATOR_HOST is unset and gcloud is not on the PATH")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	h := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(gcloud, "emulators", "firestore", "start", "--host-port="+h, "--quiet")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the emulator: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	if err := waitReady(h, 90*time.Second, exited); err != nil {
		stop()
		return nil, fmt.Errorf("emulator on %s: %w; its output:\n%s", h, err, out.String())
	}
	host = h
	os.Setenv("FIRESTORE_EMULATOR_HOST", h)
	return stop, nil
}

// waitReady polls the emulator's root URL until it answers.
func waitReady(h string, timeout time.Duration, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://" + h + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("the emulator exited")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
