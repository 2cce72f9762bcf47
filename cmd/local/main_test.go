package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testkit"
)

func TestMain(m *testing.M) {
	os.Exit(emulator.Main(m))
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds cmd/local and cmd/apikey once and returns their folder.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "keygate-bin")
		if buildErr != nil {
			return
		}
		for _, cmd := range []string{"local", "apikey"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "github.com/keygate/keygate/cmd/"+cmd).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// cleanEnv is the test process's environment without keygate's variables.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "PORT", "HOST", "FUNCTION_TARGET", "KEY_CACHE_TTL",
			"REDIS_URL", "REDIS_CA_CERT", "REDIS_TIMEOUT", "CLOUD_RUN_TIMEOUT_SECONDS":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// startLocal starts cmd/local with env and args and waits until it serves;
// it returns the port and the lines it printed by then.
func startLocal(t *testing.T, env []string, args ...string) (port string, printed []string) {
	t.Helper()
	port, printed, _ = startLocalCmd(t, env, args...)
	return port, printed
}

// startLocalCmd is startLocal, returning the process too.
func startLocalCmd(t *testing.T, env []string, args ...string) (port string, printed []string, cmd *exec.Cmd) {
	t.Helper()
	port = freePort(t)
	cmd = exec.Command(filepath.Join(binaries(t), "local"), args...)
	cmd.Env = append(env, "PORT="+port)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	ready := make(chan struct{})
	var (
		mu    sync.Mutex
		lines []string
	)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			if strings.HasPrefix(sc.Text(), "keygate: serving API on") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("cmd/local did not start; it printed %q", lines)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cmd/local does not listen")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return port, append([]string(nil), lines...), cmd
}

// apikey runs the CLI with env and args and returns its standard output.
func apikey(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "apikey"), args...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("apikey %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("apikey %v: %v", args, err)
	}
	return out
}

// get calls url with key and returns the status and body.
func get(t *testing.T, client *http.Client, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var (
	demoKeyLine   = regexp.MustCompile(`^  export KEY=(kg_\w+) +# the default scopes`)
	adminKeyLine  = regexp.MustCompile(`^  export ADMIN_KEY=(kg_\w+) +# keys:manage too$`)
	demoShellLine = regexp.MustCompile(`^  export `)
)

// demoKey finds the demo key and the curl line in cmd/local's output, and
// turns the curl line into a command that runs with the export lines before
// it, as a reader pastes them.
func demoKey(t *testing.T, lines []string) (key, curl string) {
	t.Helper()
	var exports []string
	for _, l := range lines {
		if m := demoKeyLine.FindStringSubmatch(l); m != nil {
			key = m[1]
		}
		if demoShellLine.MatchString(l) {
			exports = append(exports, strings.TrimSpace(l))
		}
		if strings.HasPrefix(strings.TrimSpace(l), "curl ") {
			curl = strings.TrimSpace(l)
		}
	}
	if key == "" || curl == "" || len(exports) != 3 {
		t.Fatalf("no demo key, export lines and curl line in %q", lines)
	}
	return key, strings.Join(exports, "\n") + "\n" + curl
}

func TestLocalInMemory(t *testing.T) {
	port, lines := startLocal(t, cleanEnv())
	key, curl := demoKey(t, lines)
	url := "http://localhost:" + port + "/"
	if code, body := get(t, http.DefaultClient, url, key); code != 200 || body != `{"message":"Hello World"}`+"\n" {
		t.Errorf("GET / with the demo key = %d %s", code, body)
	}
	if code, _ := get(t, http.DefaultClient, url, ""); code != 401 {
		t.Errorf("GET / without a key = %d, want 401", code)
	}
	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("sh", "-c", curl+" -sS").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Hello World") {
			t.Errorf("the printed curl line %q gave %s, %v", curl, out, err)
		}
	}
	// The admin key signs in to the web console, which it names.
	if !slices.Contains(lines, "or sign in with the admin key to the web console at http://localhost:"+port+"/console") {
		t.Errorf("cmd/local does not name the console: %q", lines)
	}
	var admin string
	for _, l := range lines {
		if m := adminKeyLine.FindStringSubmatch(l); m != nil {
			admin = m[1]
		}
	}
	if code, body := get(t, http.DefaultClient, url+"console", ""); code != 200 || !strings.Contains(body, `<label for="api-key">API key</label>`) {
		t.Errorf("GET /console without a key = %d, want 200 and the page", code)
	}
	if code, body := get(t, http.DefaultClient, url+"v1/keys", admin); code != 200 || !strings.Contains(body, `"name":"demo key"`) {
		t.Errorf("GET /v1/keys with the admin key = %d %s, want 200 listing the demo key", code, body)
	}
	if code, _ := get(t, http.DefaultClient, url+"v1/keys", key); code != 403 {
		t.Errorf("GET /v1/keys with the demo key = %d, want 403: it has the default scopes", code)
	}
}

func TestLocalTLS(t *testing.T) {
	cert, key := tlsCert(t)
	port, lines := startLocal(t, cleanEnv(), "-tls-cert", cert, "-tls-key", key)
	demo, curl := demoKey(t, lines)
	pem, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://localhost:" + port + "/"
	if code, body := get(t, client, url, demo); code != 200 || !strings.Contains(body, "Hello World") {
		t.Errorf("HTTPS GET / = %d %s", code, body)
	}
	if code, _ := get(t, client, url, ""); code != 401 {
		t.Errorf("HTTPS GET / without a key = %d, want 401", code)
	}
	if code, body := get(t, http.DefaultClient, "http://localhost:"+port+"/", demo); code != http.StatusBadRequest {
		t.Errorf("plain HTTP on the TLS port = %d %s, want Go's 400 for HTTP on an HTTPS port", code, body)
	}
	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("sh", "-c", curl+" -sS").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Hello World") {
			t.Errorf("the printed curl line %q gave %s, %v", curl, out, err)
		}
	}
}

func TestLocalUsage(t *testing.T) {
	for _, args := range [][]string{{"-tls-cert", "x.pem"}, {"-nope"}, {"extra"}} {
		cmd := exec.Command(filepath.Join(binaries(t), "local"), args...)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "usage:") {
			t.Errorf("local %v = %v %s, want exit 2 with usage", args, err, out)
		}
	}
	cmd := exec.Command(filepath.Join(binaries(t), "local"))
	cmd.Env = cleanEnv("KEY_CACHE_SIZE=many")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "KEY_CACHE_SIZE") {
		t.Errorf("bad configuration = %v %s, want exit 1 naming KEY_CACHE_SIZE", err, out)
	}
	for _, name := range []string{"LOCAL_READ_HEADER_TIMEOUT", "LOCAL_READ_BODY_TIMEOUT"} {
		cmd = exec.Command(filepath.Join(binaries(t), "local"))
		cmd.Env = cleanEnv(name + "=0s")
		out, err = cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), name) {
			t.Errorf("bad %s = %v %s, want exit 1 naming it", name, err, out)
		}
	}
}

// TestCLIToFunctionOnEmulator is the operator's whole flow on the Firestore
// emulator: mint a key with the CLI, call the function with it through the
// Functions Framework, revoke it with the CLI, and see it refused once
// KEY_CACHE_TTL has passed.
func TestCLIToFunctionOnEmulator(t *testing.T) {
	host, project := emulator.Project(t)
	// A cold emulator can take seconds over its first writes.
	env := cleanEnv("FIRESTORE_EMULATOR_HOST="+host, "GOOGLE_CLOUD_PROJECT="+project, "KEY_CACHE_TTL=1s", "STORE_TIMEOUT=20s")
	var created struct{ ID, Key string }
	if err := json.Unmarshal(apikey(t, env, "create", "--owner", "grandma", "--name", "bingo night", "--json"), &created); err != nil {
		t.Fatal(err)
	}
	port, _ := startLocal(t, env)
	url := "http://127.0.0.1:" + port + "/"
	if code, body := get(t, http.DefaultClient, url, created.Key); code != 200 {
		t.Fatalf("new key = %d %s, want 200", code, body)
	}
	req, _ := http.NewRequest("POST", url+"v1/bingo/check", strings.NewReader(
		`{"card":[[7,19,38,52,71],[3,24,41,49,66],[12,17,0,57,62],[1,28,33,60,74],[14,22,44,47,69]],"called":[12,57,17,62,38,41,33,44,5]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", created.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), `{"bingo":true,`) {
		t.Errorf("bingo check through cmd/local = %d %s", resp.StatusCode, body)
	}
	apikey(t, env, "revoke", created.ID)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := get(t, http.DefaultClient, url, created.Key)
		if code == 401 {
			if !strings.Contains(body, `"code":"invalid_api_key"`) {
				t.Errorf("revoked key body = %s", body)
			}
			break
		}
		if code != 200 || time.Now().After(deadline) {
			t.Fatalf("revoked key = %d %s, want 200 until KEY_CACHE_TTL passes, then 401", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCLINamesTheFunctionDefaults checks that what the CLI says a key
// created without --scopes grants the bingo function is the function's
// DefaultScopes: the CLI does not import the function, so it names them
// itself.
func TestCLINamesTheFunctionDefaults(t *testing.T) {
	help := strings.Join(strings.Fields(string(apikey(t, cleanEnv(), "help", "create"))), " ")
	if want := "(for the bingo function: " + keygate.DefaultScopes + ")"; !strings.Contains(help, want) {
		t.Errorf("apikey help create lacks %q:\n%s", want, help)
	}
}

// TestLocalFlushesUsageOnSIGTERM serves N requests through cmd/local on the
// emulator, stops it with SIGTERM as Cloud Run does, and finds exactly N
// requests stored.
func TestLocalFlushesUsageOnSIGTERM(t *testing.T) {
	host, project := emulator.Project(t)
	env := cleanEnv("FIRESTORE_EMULATOR_HOST="+host, "GOOGLE_CLOUD_PROJECT="+project, "USAGE_FLUSH_INTERVAL=1h", "STORE_TIMEOUT=20s")
	var created struct{ ID, Key string }
	if err := json.Unmarshal(apikey(t, env, "create", "--owner", "grandma", "--json"), &created); err != nil {
		t.Fatal(err)
	}
	port, _, cmd := startLocalCmd(t, env)
	const n = 40
	for i := range n {
		if code, body := get(t, http.DefaultClient, "http://127.0.0.1:"+port+"/", created.Key); code != 200 {
			t.Fatalf("request %d = %d %s", i, code, body)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("cmd/local did not exit within 20s of SIGTERM")
	}
	var usage struct {
		MonthTotal int64 `json:"month_total"`
	}
	if err := json.Unmarshal(apikey(t, env, "usage", created.ID, "--json"), &usage); err != nil {
		t.Fatal(err)
	}
	if usage.MonthTotal != n {
		t.Errorf("stored after SIGTERM: %d requests, want %d", usage.MonthTotal, n)
	}
}

// tlsCert writes the README's self-signed certificate into a temporary
// folder and returns its files, skipping the test without openssl.
func tlsCert(t *testing.T) (cert, key string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	dir := t.TempDir()
	// The README's command, word for word.
	gen := exec.Command("sh", "-c", `openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout key.pem -out cert.pem -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"`)
	gen.Dir = dir
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	return filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
}

// TestLocalClosesHalfSentHeaders opens a connection that sends half a
// request header and never the rest, as a slowloris does, and sees
// cmd/local close it once LOCAL_READ_HEADER_TIMEOUT has passed, in plain
// and TLS modes. Without a header timeout the connection stays open.
func TestLocalClosesHalfSentHeaders(t *testing.T) {
	for _, mode := range []string{"http", "https"} {
		t.Run(mode, func(t *testing.T) {
			var args []string
			if mode == "https" {
				cert, key := tlsCert(t)
				args = []string{"-tls-cert", cert, "-tls-key", key}
			}
			port, _ := startLocal(t, cleanEnv("LOCAL_READ_HEADER_TIMEOUT=200ms"), args...)
			var conn net.Conn
			conn, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if mode == "https" {
				tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) // only the connection's fate matters
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				conn = tc
			}
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nX-API-Ke"); err != nil {
				t.Fatal(err)
			}
			// The deadline only keeps a failing test from hanging; the
			// server closes the connection long before it.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			n, err := io.Copy(io.Discard, conn)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the half-sent request is still open after 20s (read %d bytes)", n)
			}
		})
	}
}

// slowRequest starts a bingo check on port whose body it sends in two
// halves: the first now, the second when the returned function is called,
// which returns the response's status and body.
func slowRequest(t *testing.T, port, key string) (finish func() (int, string)) {
	t.Helper()
	body := `{"card":[[7,19,38,52,71],[3,24,41,49,66],[12,17,0,57,62],[1,28,33,60,74],[14,22,44,47,69]],"called":[12,57,17,62,38,41,33,44,5]}`
	conn, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST /v1/bingo/check HTTP/1.1\r\nHost: localhost\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", key, len(body))
	if _, err := io.WriteString(conn, head+body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	return func() (int, string) {
		t.Helper()
		if _, err := io.WriteString(conn, body[len(body)/2:]); err != nil {
			t.Fatalf("sending the rest of the body: %v", err)
		}
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}

// TestLocalGracefulShutdown sends SIGTERM while a request is in flight:
// cmd/local stops accepting connections, lets the request finish with 200,
// and exits 0.
func TestLocalGracefulShutdown(t *testing.T) {
	port, lines, cmd := startLocalCmd(t, cleanEnv())
	key, _ := demoKey(t, lines)
	finish := slowRequest(t, port, key)
	time.Sleep(300 * time.Millisecond) // let the request reach the function; it is in flight either way
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			break // refused: the listener is closed
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("cmd/local still accepts connections 10s after SIGTERM")
		}
	}
	if code, body := finish(); code != 200 || !strings.HasPrefix(body, `{"bingo":true,`) {
		t.Errorf("the request in flight at SIGTERM = %d %s, want 200", code, body)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("cmd/local exited with %v, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cmd/local did not exit within 30s of SIGTERM")
	}
}

// TestStartFailures: each start-up failure exits 1 with one line that
// names the setting, and prints no demo key and no "serving" line before.
func TestStartFailures(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := fmt.Sprint(taken.Addr().(*net.TCPAddr).Port)
	dead := freePort(t) // nothing listens there
	noCreds := t.TempDir()
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"port taken", []string{"PORT=" + takenPort}, nil, "HOST=127.0.0.1 PORT=" + takenPort + ": cannot listen"},
		{"port not a number", []string{"PORT=abc"}, nil, `PORT="abc": want a port number from 1 to 65535`},
		{"port out of range", []string{"PORT=70000"}, nil, `PORT="70000": want a port number from 1 to 65535`},
		{"missing certificate", []string{"PORT=" + freePort(t)}, []string{"-tls-cert", "nope.pem", "-tls-key", "nope-key.pem"}, "-tls-cert nope.pem -tls-key nope-key.pem: open nope.pem: no such file or directory"},
		{"bad configuration", []string{"PORT=" + freePort(t), "KEY_CACHE_TTL=abc"}, nil, `KEY_CACHE_TTL="abc"`},
		{"request timeout not in seconds", []string{"PORT=" + freePort(t), "CLOUD_RUN_TIMEOUT_SECONDS=5m"}, nil, `CLOUD_RUN_TIMEOUT_SECONDS="5m": want a whole number of seconds`},
		{"dead emulator", []string{"PORT=" + freePort(t), "FIRESTORE_EMULATOR_HOST=127.0.0.1:" + dead}, nil, "no Firestore emulator answers at 127.0.0.1:" + dead + " (FIRESTORE_EMULATOR_HOST)"},
		{"no credentials", []string{"PORT=" + freePort(t), "GOOGLE_CLOUD_PROJECT=some-project", "HOME=" + noCreds, "CLOUDSDK_CONFIG=" + noCreds, "GOOGLE_APPLICATION_CREDENTIALS="}, nil,
			"no Google credentials: run `gcloud auth application-default login`, or set FIRESTORE_EMULATOR_HOST to use the emulator (project some-project"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binaries(t), "local"), c.args...)
			cmd.Env = cleanEnv(append([]string{"STORE_TIMEOUT=5s"}, c.env...)...)
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
				t.Fatalf("exit %d (%v), want 1; output:\n%s", code, err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "local: ") || !strings.Contains(lines[0], c.want) {
				t.Errorf("output %q, want one line \"local: ...%s...\"", out, c.want)
			}
		})
	}
}

// TestLocalSaysWhereLimitsAre: with REDIS_URL, cmd/local says at start
// that the limits are global on that Redis, or that it does not answer and
// the limits are per instance until it does; it starts either way.
func TestLocalSaysWhereLimitsAre(t *testing.T) {
	rds := redistest.Start(t)
	dead := "redis://127.0.0.1:" + freePort(t)
	for _, c := range []struct{ url, want string }{
		{rds.URL(), "keygate: rate limits and quotas: global, on Redis at " + rds.Addr},
		{dead, "keygate: rate limits and quotas: Redis at " + strings.TrimPrefix(dead, "redis://") + " does not answer ("},
	} {
		_, lines := startLocal(t, cleanEnv("REDIS_URL="+c.url))
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, c.want)
		}
		if !found {
			t.Errorf("REDIS_URL=%s: cmd/local printed %q, want a line starting %q", c.url, lines, c.want)
		}
	}
}

// TestTwoLocalsShareQuota is the finding, as a user meets it: two
// cmd/local on one emulator and one redis-server, an owner with a quota of
// 50, 200 concurrent requests at each: 50 admitted in all, and, once both
// have stopped, 50 stored (the billing total).
func TestTwoLocalsShareQuota(t *testing.T) {
	rds := redistest.Start(t)
	host, project := emulator.Project(t)
	env := cleanEnv("FIRESTORE_EMULATOR_HOST="+host, "GOOGLE_CLOUD_PROJECT="+project, "STORE_TIMEOUT=20s",
		"REDIS_URL="+rds.URL(), "REDIS_TIMEOUT=10s") // a deadline for the test's burst, not for speed
	var created struct{ ID, Key string }
	if err := json.Unmarshal(apikey(t, env, "create", "--owner", "grandma", "--json"), &created); err != nil {
		t.Fatal(err)
	}
	apikey(t, env, "plan", "set", "grandma", "--quota", "50")
	var cmds []*exec.Cmd
	var urls []string
	for range 2 {
		port, _, cmd := startLocalCmd(t, env)
		cmds, urls = append(cmds, cmd), append(urls, "http://127.0.0.1:"+port+"/")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	admitted, refused := testkit.Burst(t, client, urls, created.Key, 200)
	for _, cmd := range cmds {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	var usage struct {
		MonthTotal int64 `json:"month_total"`
	}
	if err := json.Unmarshal(apikey(t, env, "usage", created.ID, "--json"), &usage); err != nil {
		t.Fatal(err)
	}
	t.Logf("two cmd/local, quota 50, 2 × 200 concurrent: %d admitted, %d refused, %d stored", admitted, refused, usage.MonthTotal)
	if admitted != 50 || refused != 350 || usage.MonthTotal != 50 {
		t.Errorf("%d admitted, %d refused, %d stored; want 50, 350, 50", admitted, refused, usage.MonthTotal)
	}
}
