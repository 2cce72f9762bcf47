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
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testrun"
)

// A test that needs the emulator fails when there is none, with the reason
// and what to do, so that `go test ./...` never passes with these tests
// quietly skipped (go test shows nothing of a passing package but "ok").
// SkipEnv=1 makes them skip instead, and starts none, even with gcloud
// installed: for a machine without the Google Cloud CLI, or a quick run;
// an emulator named by FIRESTORE_EMULATOR_HOST is still used. RequireEnv
// (set by .ci/run) makes them fail even then.
const (
	SkipEnv    = "KEYGATE_SKIP_EMULATOR"
	RequireEnv = "KEYGATE_REQUIRE_EMULATOR"
)

var (
	projects atomic.Int64 // projects handed out by Project

	host      string // host:port of the running emulator, or ""
	reason    string // why there is none
	benchOnly bool   // -run '^$': no emulator was started for benchmarks
)

// Main starts the emulator if need be (or shares the one another test
// process started: see DirEnv), runs the tests and stops it unless another
// process still uses it; on SIGINT or SIGTERM too. Call it from TestMain:
// os.Exit(emulator.Main(m)).
func Main(m *testing.M) int {
	flag.Parse()
	if run := flag.Lookup("test.run"); run != nil && run.Value.String() == "^$" {
		// Benchmarks only (go test -run '^$' -bench ...): no test needs the
		// emulator, and its JVM would compete with them for the CPUs.
		reason, benchOnly = "not started: no tests selected (-run '^$')", true
		return m.Run()
	}
	stop, err := start()
	if err != nil {
		reason = err.Error()
	}
	if err != nil && !skipping() { // skipping, the package's line says why
		fmt.Fprintf(os.Stderr, "\n!!! FIRESTORE EMULATOR NOT AVAILABLE: %s\n!!! The Firestore-backed tests will FAIL (set %s=1 to skip them).\n\n", reason, SkipEnv)
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	testrun.Report()
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
// emulator the test fails in one line (the package's banner says why and
// what to do), or skips when SkipEnv is 1 and RequireEnv is not set.
func Host(t testing.TB) string {
	t.Helper()
	if host == "" {
		if benchOnly {
			// A benchmark smoke run (.ci/run's) is no test of the store.
			t.Skip("needs the Firestore emulator, which -run '^$' does not start: run it with -run NONE")
		}
		if skipping() {
			testrun.Skip(t, testrun.Emulator, SkipEnv+"=1: "+reason)
		}
		t.Fatal("no Firestore emulator: see FIRESTORE EMULATOR NOT AVAILABLE at the top of this package's output")
	}
	testrun.Used(t, testrun.Emulator)
	return host
}

// skipping reports whether the tests that need a missing emulator skip.
func skipping() bool { return os.Getenv(SkipEnv) == "1" && os.Getenv(RequireEnv) == "" }

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
	if skipping() {
		return nil, errors.New("none started (FIRESTORE_EMULATOR_HOST is unset)")
	}
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return nil, errors.New("FIRESTORE_EMULATOR_HOST is unset and gcloud is not on the PATH")
	}
	releaseOnSignal()
	h, err := acquire(gcloud)
	if err != nil {
		release()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "keygate: Firestore emulator on %s, shared through %s\n", h, sharedDir())
	host = h
	os.Setenv("FIRESTORE_EMULATOR_HOST", h)
	return release, nil
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
