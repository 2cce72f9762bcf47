// Package stripetest is Stripe for the billing tests: stripe-mock, which
// checks each request against Stripe's own API description (Mock), and a
// recording stand-in for what stripe-mock cannot show, such as identifiers
// already seen, a lost answer, a 429 and a hang (StandIn).
package stripetest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testrun"
)

// RequireEnv (set by .ci/run) makes a test that needs stripe-mock fail when
// there is none; without it, such a test skips, saying so.
const RequireEnv = "KEYGATE_REQUIRE_STRIPE_MOCK"

// Version is the stripe-mock that .ci/run installs.
const Version = "v0.203.0"

// Mock starts stripe-mock for t on a free loopback port, waits until it
// answers, and stops it when t ends (and with the test process, however
// that ends: Ctrl-C included). It returns its base URL, for
// STRIPE_API_BASE. stripe-mock is found on the PATH or in $GOBIN, or
// $(go env GOPATH)/bin, where go install puts it; without it the test
// skips, or fails when RequireEnv is set.
func Mock(t testing.TB) string {
	t.Helper()
	bin := find()
	if bin == "" {
		msg := "stripe-mock not found on the PATH nor in GOBIN: go install github.com/stripe/stripe-mock@" + Version
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s (%s is set)", msg, RequireEnv)
		}
		testrun.Skip(t, testrun.Stripe, msg+"; set "+RequireEnv+"=1 to make this a failure")
	}
	testrun.Used(t, testrun.Stripe)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-http-addr", addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting stripe-mock: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	base := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; {
		if answers(base) {
			return base
		}
		select {
		case <-done:
			t.Fatalf("stripe-mock on %s exited: %s", addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock on %s did not answer within 20s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// find is the path of stripe-mock, "" if there is none.
func find() string {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	dirs := []string{os.Getenv("GOBIN")}
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		dirs = append(dirs, filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "stripe-mock")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// answers reports whether stripe-mock at base answers an API request.
func answers(base string) bool {
	c := &http.Client{Timeout: time.Second}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/customers/cus_1", nil)
	req.Header.Set("Authorization", "Bearer sk_test_"+strconv.Itoa(1))
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
