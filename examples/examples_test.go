// Package examples tests the example modules under examples/ as their users
// would build them: each copied out of this repository, with its replace
// directive pointed at this checkout.
package examples

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/readme"
)

func TestMain(m *testing.M) {
	os.Exit(emulator.Main(m))
}

// copyProtect copies examples/protect to a directory outside this
// repository, its replace directive pointed at this checkout, and returns
// the directory.
func copyProtect(t *testing.T) string {
	t.Helper()
	dir := copyExample(t, "protect")
	if b, _ := os.ReadFile(filepath.Join(dir, "go.mod")); !bytes.Contains(b, []byte("=> "+checkout(t))) {
		t.Fatalf("examples/protect/go.mod has no %q replace directive", "=> ../..")
	}
	return dir
}

// checkout is the absolute path of this checkout.
func checkout(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyExample copies examples/name to a directory outside this repository,
// a replace directive of keygate (=> ../..) pointed at this checkout, and
// returns the directory.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go on the PATH")
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(name)); err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(dir, "go.mod")
	b, err := os.ReadFile(mod)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mod, bytes.Replace(b, []byte("=> ../.."), []byte("=> "+checkout(t)), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// environ is os.Environ without the variables that point at Firestore or
// credentials, with extra added.
func environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS", "PORT", "FUNCTION_TARGET":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// TestProtectUnitTestOffline runs the example's unit test, in a copy
// outside this repository, with no emulator and no credentials: it passes,
// and nothing tried to reach Firestore (no gate built from the
// environment, no warning of an unavailable store).
func TestProtectUnitTestOffline(t *testing.T) {
	dir := copyProtect(t)
	cmd := exec.Command("go", "test", "-count=1", "-v", "-run", "^TestThings$", ".")
	cmd.Dir = dir
	cmd.Env = environ("GOOGLE_APPLICATION_CREDENTIALS=/nonexistent/credentials.json", "GOPROXY=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in a copy of examples/protect: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestThings ") {
		t.Errorf("the example's unit test did not pass:\n%s", out)
	}
	for _, bad := range []string{"credentials", "key store unavailable", "firestore"} {
		if strings.Contains(strings.ToLower(string(out)), bad) {
			t.Errorf("the example's unit test printed %q: it reached for Firestore:\n%s", bad, out)
		}
	}
}

// TestProtectOnEmulator runs the example's emulator test in a copy outside
// this repository: a key minted with the CLI reaches its handler; no key,
// a bad key and a key without the scope get 401, 401 and 403.
func TestProtectOnEmulator(t *testing.T) {
	host := emulator.Host(t)
	dir := copyProtect(t)
	cmd := exec.Command("go", "test", "-count=1", "-v", "-run", "TestThingsOnEmulator", ".")
	cmd.Dir = dir
	// A cold emulator's first calls can take longer than the default
	// STORE_TIMEOUT (2 s) on a loaded machine: the test is of the example,
	// not of the emulator's start.
	cmd.Env = environ("FIRESTORE_EMULATOR_HOST="+host, "STORE_TIMEOUT=30s")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in a copy of examples/protect: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestThingsOnEmulator/key_with_things:read", "--- PASS: TestThingsOnEmulator/no_key",
		"--- PASS: TestThingsOnEmulator/bad_key", "--- PASS: TestThingsOnEmulator/key_without_things:read"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the example's tests did not report %q:\n%s", want, out)
		}
	}
}

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

// TestReadmeRunsProtectLocally runs the README's "Run your function
// locally" as a reader would, on the test's emulator: the example's
// cmd/main.go (the Functions Framework) serves the function, the CLI mints
// the keys, and the curl commands print what the README shows: 401, 403
// and the owner's things. Without the emulator, cmd/main.go stops at once,
// naming the address where none answers.
func TestReadmeRunsProtectLocally(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found")
	}
	host, project := emulator.Project(t)
	dir := copyProtect(t)
	infos, blocks := readme.Fenced(readme.Section(t, "../README.md", "Run your function locally"))
	if len(blocks) != 4 || infos[3] != "" {
		t.Fatalf("the section has %d blocks (%q), want 3 commands and their output", len(blocks), infos)
	}
	const serve = "FIRESTORE_EMULATOR_HOST=127.0.0.1:8086 go run ./cmd"
	if !strings.Contains(blocks[1], serve) {
		t.Fatalf("the section does not serve the function with %q:\n%s", serve, blocks[1])
	}
	bin := filepath.Join(t.TempDir(), "things")
	build := exec.Command("go", "build", "-o", bin, "./cmd")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd: %v\n%s", err, out)
	}

	// No emulator: it stops, saying where it found none.
	dead := "127.0.0.1:" + freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = environ("FIRESTORE_EMULATOR_HOST="+dead, "GOOGLE_CLOUD_PROJECT="+project, "STORE_TIMEOUT=500ms", "PORT="+freePort(t))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no Firestore emulator answers at "+dead) {
		t.Errorf("cmd/main.go with no emulator: %v\n%s", err, out)
	}

	port := freePort(t)
	server := exec.Command(bin)
	server.Env = environ("FIRESTORE_EMULATOR_HOST="+host, "GOOGLE_CLOUD_PROJECT="+project, "PORT="+port)
	var logs bytes.Buffer
	server.Stdout, server.Stderr = &logs, &logs
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Process.Kill(); server.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cmd/main.go did not listen on %s:\n%s", port, logs.String())
		}
	}

	script := strings.NewReplacer("cd examples/protect\n", "", "127.0.0.1:8086", host, "localhost:8080", "localhost:"+port).Replace(blocks[2])
	run := exec.Command("bash", "-c", script)
	run.Dir = dir
	run.Env = environ("GOOGLE_CLOUD_PROJECT=" + project)
	out, err := run.Output()
	if err != nil {
		t.Fatalf("the section's commands: %v\n%s\nserver:\n%s", err, out, logs.String())
	}
	if string(out) != blocks[3] {
		t.Errorf("the section's commands printed:\n%s\nthe README shows:\n%s", out, blocks[3])
	}
}

// TestReadmeShowsProtect checks that the README's "Protect your own
// function" section shows examples/protect's function.go and its unit
// test as they are, and that the unit test is under 15 lines of code.
func TestReadmeShowsProtect(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"protect/function.go", "protect/function_test.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(readme, []byte("```go\n"+string(src)+"```\n")) {
			t.Errorf("README.md does not show examples/%s verbatim in a ```go block", f)
		}
	}
	src, _ := os.ReadFile("protect/function_test.go")
	_, body, _ := strings.Cut(string(src), "func TestThings(")
	if n := strings.Count(body, "\n") - 2; n >= 15 { // the lines between the braces
		t.Errorf("the example's unit test has %d lines of code, want under 15", n)
	}
}

// TestNotifyOffline runs examples/notify's tests in a copy outside this
// repository, offline (GOPROXY=off): the consumer posts to a local stand-in
// for Slack, through the Functions Framework's HTTP binding of CloudEvents,
// and reads each example of docs/events.md's catalogue.
// The example builds on its own: it imports nothing of keygate, so that a
// reader copies it as it is.
func TestNotifyOffline(t *testing.T) {
	dir := copyExample(t, "notify")
	list := exec.Command("go", "list", "-deps", "-test", ".")
	list.Dir = dir
	list.Env = environ("GOPROXY=off")
	deps, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("go list in a copy of examples/notify: %v\n%s", err, deps)
	}
	if strings.Contains(string(deps), "github.com/keygate/keygate") {
		t.Errorf("examples/notify depends on keygate's packages:\n%s", deps)
	}
	// The catalogue's examples, which keygate's tests check against the
	// code, for the example's TestNotifyDocumentedEvents.
	var examples []json.RawMessage
	parts := strings.Split(readme.Section(t, "../docs/events.md", "Catalogue"), "\n### ")
	for _, part := range parts[1:] {
		_, blocks := readme.Fenced(part)
		examples = append(examples, json.RawMessage(blocks[0]))
	}
	file := filepath.Join(t.TempDir(), "examples.json")
	if b, err := json.Marshal(examples); err != nil || os.WriteFile(file, b, 0o644) != nil {
		t.Fatalf("writing the catalogue's examples: %v", err)
	}
	cmd := exec.Command("go", "test", "-count=1", "-v", ".")
	cmd.Dir = dir
	cmd.Env = environ("GOPROXY=off", "KEYGATE_EVENT_EXAMPLES="+file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in a copy of examples/notify: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestNotifyPosts ", "--- PASS: TestNotifyAcknowledgesMalformed ", "--- PASS: TestNotifyRetries ",
		"--- PASS: TestNotifyWebhookHangs ", "--- PASS: TestNotifyOncePerID ", "--- PASS: TestNotifyEscapesMarkup ",
		"--- PASS: TestNotifyDocumentedEvents/keygate.key.leaked ", "--- PASS: TestNotifyDocumentedEvents/keygate.key.expiring ",
		"--- PASS: TestNotifyDocumentedEvents/keygate.usage.threshold ", "--- PASS: TestNotifyDocumentedEvents/keygate.key.created "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the example's tests did not report %q:\n%s", want, out)
		}
	}
}
