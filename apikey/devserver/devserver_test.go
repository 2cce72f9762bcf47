package devserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/testkit"
)

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// things is a user's routes: one endpoint for keys that grant things:read.
func things(g *apikey.Gate) http.Handler {
	return g.Protect("things:read", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _ := apikey.FromContext(r.Context())
		fmt.Fprintf(w, "%s's things\n", key.Owner)
	}))
}

// started is a run of run in the background: the lines it printed by the
// time it said it serves, the signal channel that stops it, and its end.
type started struct {
	lines []string
	sigs  chan os.Signal
	done  chan struct{} // closed when run returns, with err
	err   error
	rest  *testkit.SyncBuffer // what it prints after the serving line
	// copied is closed once rest holds all it printed: after done, the
	// copy may still be writing the last line it read.
	copied chan struct{}
}

// start runs o (Getenv from vars) until it says it serves, and checks that
// the address it names accepts a connection at once: it bound before it
// said so.
func start(t *testing.T, o Options, vars map[string]string) *started {
	t.Helper()
	o.Getenv = func(name string) string { return vars[name] }
	pr, pw := io.Pipe()
	o.Stdout, o.Stderr = pw, io.Discard
	s := &started{sigs: make(chan os.Signal, 1), done: make(chan struct{}), rest: &testkit.SyncBuffer{}, copied: make(chan struct{})}
	go func() { s.err = run(o, s.sigs); pw.Close(); close(s.done) }()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		s.lines = append(s.lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "keygate: serving ") {
			break
		}
	}
	if len(s.lines) == 0 || !strings.HasPrefix(s.lines[len(s.lines)-1], "keygate: serving ") {
		<-s.done
		t.Fatalf("no serving line; printed %q, returned %v", s.lines, s.err)
	}
	go func() { io.Copy(s.rest, pr); close(s.copied) }()
	t.Cleanup(func() {
		select {
		case s.sigs <- syscall.SIGTERM:
		default:
		}
		<-s.done
	})
	c, err := net.Dial("tcp", "127.0.0.1:"+vars["PORT"])
	if err != nil {
		t.Fatalf("%q printed, but nothing accepts a connection: %v", s.lines[len(s.lines)-1], err)
	}
	c.Close()
	return s
}

// TestMainInMemory: with no Firestore configured, the function is served
// on 127.0.0.1 with its keys in memory and the demo keys printed, KEY with
// the scopes named and OTHER_KEY without; they get 200 and 403, no key
// 401; SIGTERM drains and returns.
func TestMainInMemory(t *testing.T) {
	port := freePort(t)
	s := start(t, Options{Routes: things, Keys: []Key{{Var: "KEY", Scopes: []string{"things:read"}}, {Var: "OTHER_KEY"}}},
		map[string]string{"PORT": port})
	keys := map[string]string{}
	line := regexp.MustCompile(`^  export (\w+)=(kg_\w+) +# (.*)$`)
	for _, l := range s.lines {
		if m := line.FindStringSubmatch(l); m != nil {
			keys[m[1]] = m[2]
			keys[m[1]+" note"] = m[3]
		}
	}
	if keys["KEY note"] != "things:read" || keys["OTHER_KEY note"] != "no scope" {
		t.Errorf("the demo keys' notes: %q, %q; want things:read, no scope:\n%s", keys["KEY note"], keys["OTHER_KEY note"], strings.Join(s.lines, "\n"))
	}
	if want := "keygate: serving function on http://localhost:" + port + "/"; s.lines[len(s.lines)-1] != want {
		t.Errorf("last line %q, want %q", s.lines[len(s.lines)-1], want)
	}
	for key, want := range map[string]int{"": 401, keys["OTHER_KEY"]: 403, keys["KEY"]: 200} {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/", nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && string(body) != "demo's things\n") {
			t.Errorf("key %.8q: %d %s, want %d", key, resp.StatusCode, body, want)
		}
	}
	s.sigs <- syscall.SIGTERM
	select {
	case <-s.done:
		if s.err != nil {
			t.Errorf("after SIGTERM: %v", s.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still serving 30 s after SIGTERM")
	}
	<-s.copied
	if !strings.Contains(s.rest.String(), "keygate: stopped") {
		t.Errorf("no stopped line after SIGTERM: %s", s.rest)
	}
}

// TestListensOnLoopback: HOST unset binds 127.0.0.1, not every interface;
// HOST says otherwise.
func TestListensOnLoopback(t *testing.T) {
	for host, want := range map[string]string{"": "127.0.0.1", "::1": "::1"} {
		port := freePort(t)
		srv, err := listen(Options{}, func(name string) string {
			return map[string]string{"HOST": host, "PORT": port}[name]
		})
		if host == "::1" && err != nil {
			t.Logf("no IPv6 loopback here: %v", err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.ln.Addr().(*net.TCPAddr).IP.String(); got != want {
			t.Errorf("HOST=%q listens on %s, want %s", host, got, want)
		}
		srv.ln.Close()
	}
}

// TestStartFailures: a port taken, a bad PORT, a Firestore emulator that
// does not answer: Run returns an error naming the setting, and prints
// nothing, no demo key in particular.
func TestStartFailures(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	taken := fmt.Sprint(held.Addr().(*net.TCPAddr).Port)
	dead := "127.0.0.1:" + freePort(t)
	for _, c := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"port taken", map[string]string{"PORT": taken}, "HOST=127.0.0.1 PORT=" + taken + ": cannot listen"},
		{"bad port", map[string]string{"PORT": "abc"}, `PORT="abc"`},
		{"bad variable", map[string]string{"PORT": freePort(t), "KEY_CACHE_TTL": "sixty"}, "KEY_CACHE_TTL"},
		{"no emulator", map[string]string{"PORT": freePort(t), "FIRESTORE_EMULATOR_HOST": dead, "STORE_TIMEOUT": "500ms"},
			"no Firestore emulator answers at " + dead},
	} {
		t.Run(c.name, func(t *testing.T) {
			if h := c.vars["FIRESTORE_EMULATOR_HOST"]; h != "" {
				t.Setenv("FIRESTORE_EMULATOR_HOST", h) // the Firestore client reads it from the process
			}
			var out strings.Builder
			err := run(Options{Routes: things, Keys: []Key{{Var: "KEY"}}, Stdout: &out, Stderr: &out,
				Getenv: func(name string) string { return c.vars[name] }}, make(chan os.Signal))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Run = %v, want an error with %q", err, c.want)
			}
			if out.Len() > 0 {
				t.Errorf("printed before failing:\n%s", out.String())
			}
		})
	}
}

// TestClientAddressIsTheConnections: clients reach the server directly, so
// the Gate takes a client's address from its connection (remote-addr), not
// from an X-Forwarded-For it sends, unless CLIENT_ADDRESS says otherwise.
func TestClientAddressIsTheConnections(t *testing.T) {
	for set, want := range map[string]string{"": "remote-addr", "load-balancer": "load-balancer"} {
		var got string
		vars := map[string]string{"PORT": "abc", "CLIENT_ADDRESS": set} // stops after the configuration
		run(Options{Routes: things, Stdout: io.Discard, Stderr: io.Discard,
			Getenv: func(name string) string { return vars[name] },
			LoadConfig: func(getenv func(string) string) (apikey.Config, error) {
				cfg, err := apikey.LoadConfig(getenv)
				got = cfg.ClientAddress
				return cfg, err
			}}, make(chan os.Signal))
		if got != want {
			t.Errorf("CLIENT_ADDRESS=%q: the Gate's ClientAddress is %q, want %q", set, got, want)
		}
	}
}
