// Package redistest starts real redis-server processes for tests: one per
// test, on a free loopback port, without persistence, stopped when the test
// ends and killed with the test process if that dies first (Ctrl-C).
package redistest

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/testrun"
)

// RequireEnv (set by .ci/run) makes a test that needs redis-server fail
// when there is none; without it, such a test skips, saying so.
const RequireEnv = "KEYGATE_REQUIRE_REDIS"

// Server is a running redis-server.
type Server struct {
	Addr string // 127.0.0.1:PORT

	t        testing.TB
	bin      string
	args     []string    // the TLS and AUTH settings
	tls      *tls.Config // nil for plain TCP
	password string
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
}

// Start starts a redis-server for t, on a port of its own, and stops it when
// t ends. Without redis-server on the PATH the test skips, or fails when
// RequireEnv is set.
func Start(t testing.TB) *Server {
	t.Helper()
	s := newServer(t)
	s.start()
	t.Cleanup(s.Kill)
	return s
}

// StartTLS is Start with TLS only, the server's certificate issued by a
// certificate authority of the test's own, whose PEM it returns, and with
// password as its AUTH password ("" for none): a Memorystore with
// in-transit encryption and AUTH.
func StartTLS(t testing.TB, password string) (s *Server, caPEM string) {
	t.Helper()
	s = newServer(t)
	dir := t.TempDir()
	caPEM, pool := issue(t, dir)
	_, port, _ := net.SplitHostPort(s.Addr)
	s.args = []string{"--port", "0", "--tls-port", port, "--tls-cert-file", filepath.Join(dir, "server.pem"),
		"--tls-key-file", filepath.Join(dir, "server.key"), "--tls-ca-cert-file", filepath.Join(dir, "ca.pem"),
		"--tls-auth-clients", "no"}
	if password != "" {
		s.args = append(s.args, "--requirepass", password)
	}
	s.tls = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	s.password = password
	s.start()
	t.Cleanup(s.Kill)
	return s, caPEM
}

// newServer finds redis-server and a free port, or skips t (fails it when
// RequireEnv is set).
func newServer(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not found on the PATH: install the Debian package redis-server"
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s (%s is set)", msg, RequireEnv)
		}
		testrun.Skip(t, testrun.Redis, msg+"; set "+RequireEnv+"=1 to make this a failure")
	}
	testrun.Used(t, testrun.Redis)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return &Server{Addr: addr, t: t, bin: bin}
}

// URL is the server's URL: redis://, or rediss:// with TLS, with its
// password.
func (s *Server) URL() string {
	u := "redis://"
	if s.tls != nil {
		u = "rediss://"
	}
	if s.password != "" {
		u += ":" + s.password + "@"
	}
	return u + s.Addr
}

// start runs the server on s.Addr and waits until it answers PING.
func (s *Server) start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	args := append([]string{"--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no", "--dir", s.t.TempDir()}, s.args...)
	cmd := exec.Command(s.bin, args...)
	// Killed with the test process, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s.ping() == nil {
			return
		}
		select {
		case <-done:
			s.t.Fatalf("redis-server on %s exited: %s", s.Addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			s.t.Fatalf("redis-server on %s did not answer within 10s: %s", s.Addr, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the server at once, as a crash would: SIGKILL.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Freeze stops the server's process (SIGSTOP): it keeps its connections and
// its data and answers nothing, as a server in a long pause does, until
// Thaw; Kill ends it frozen too.
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT), which then answers what it was
// sent meanwhile.
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// Restart starts the server again, empty, on the same address.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Client returns a client of the server, closed when the test ends, for
// tests that look at its data.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, DisableIdentity: true, TLSConfig: s.tls, Password: s.password})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// ping reports whether the server answers PING.
func (s *Server) ping() error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, TLSConfig: s.tls, Password: s.password})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}
