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
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/readme"
	"github.com/keygate/keygate/internal/testkit"
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

// TestRunningProtectOnEmulator runs docs/running.md's "Your function on
// the emulator" as a reader would, on the test's emulator: the example's
// cmd/main.go (devserver) serves the function, the CLI mints the keys, and
// the curl commands print what the page shows: 401, 403 and the owner's
// things. Without the emulator, cmd/main.go stops at once, naming the
// address where none answers.
func TestRunningProtectOnEmulator(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found")
	}
	host, project := emulator.Project(t)
	dir := copyProtect(t)
	infos, blocks := readme.Fenced(readme.Section(t, "../docs/running.md", "Your function on the emulator"))
	if len(blocks) != 4 || infos[3] != "" {
		t.Fatalf("the section has %d blocks (%q), want 3 commands and their output", len(blocks), infos)
	}
	const serve = "FIRESTORE_EMULATOR_HOST=127.0.0.1:8086 go run ./cmd"
	if !strings.Contains(blocks[1], serve) {
		t.Fatalf("the section does not serve the function with %q:\n%s", serve, blocks[1])
	}
	bin := build(t, dir, environ())

	// No emulator: it stops, saying where it found none.
	dead := "127.0.0.1:" + freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = environ("FIRESTORE_EMULATOR_HOST="+dead, "GOOGLE_CLOUD_PROJECT="+project, "STORE_TIMEOUT=500ms", "PORT="+freePort(t))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no Firestore emulator answers at "+dead) {
		t.Errorf("cmd/main.go with no emulator: %v\n%s", err, out)
	}

	port := freePort(t)
	_, logs := start(t, bin, environ("FIRESTORE_EMULATOR_HOST="+host, "GOOGLE_CLOUD_PROJECT="+project, "PORT="+port))
	script := strings.NewReplacer("127.0.0.1:8086", host, "localhost:8080", "localhost:"+port).Replace(blocks[2])
	run := exec.Command("bash", "-c", script)
	run.Dir = dir
	run.Env = environ("GOOGLE_CLOUD_PROJECT=" + project)
	out, err := run.Output()
	if err != nil {
		t.Fatalf("the section's commands: %v\n%s\nserver:\n%s", err, out, logs.String())
	}
	if string(out) != blocks[3] {
		t.Errorf("the section's commands printed:\n%s\nthe page shows:\n%s", out, blocks[3])
	}
}

// build builds the module in dir's ./cmd with env and returns the binary.
func build(t *testing.T, dir string, env []string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "things")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd")
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd: %v\n%s", err, out)
	}
	return bin
}

// start starts bin with env, waits until it says it serves, and returns
// the lines it printed by then, the serving line included, and all it
// prints; it is stopped when the test ends.
func start(t *testing.T, bin string, env []string) (lines []string, logs *testkit.SyncBuffer) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = env
	logs = &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testkit.WaitFor(t, "the serving line", func() bool { return strings.Contains(logs.String(), "keygate: serving ") })
	testkit.WaitFor(t, "the serving line's end", func() bool {
		_, after, _ := strings.Cut(logs.String(), "keygate: serving ")
		return strings.Contains(after, "\n")
	})
	before, after, _ := strings.Cut(logs.String(), "keygate: serving ")
	serving, _, _ := strings.Cut(after, "\n")
	return strings.Split(before+"keygate: serving "+serving, "\n"), logs
}

// pathWith returns a PATH of a new directory holding only the named tools
// (those found), linked: gcloud and java, which a user of the README's
// function need not have, are not among them.
func pathWith(t *testing.T, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			continue
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for _, hidden := range []string{"gcloud", "java"} {
		if _, err := os.Stat(filepath.Join(dir, hidden)); err == nil {
			t.Fatalf("%s on the PATH", hidden)
		}
	}
	return dir
}

// TestReadmeRunsProtectLocally follows the README's "Protect your own
// function" and "Run your function locally" in a new module, with no
// gcloud and no Java on the PATH and no emulator: the README's function,
// unit test and cmd/main.go, its commands (go get, go mod tidy, go test,
// with a replace for this unpublished module), then go run ./cmd (built,
// as go run builds it) prints what the README shows, and the curl commands
// with the demo keys pasted print 401, 403 and the owner's things.
func TestReadmeRunsProtectLocally(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found")
	}
	checkout, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	protectInfos, protect := readme.Fenced(readme.Section(t, "../README.md", "Protect your own function"))
	localInfos, local := readme.Fenced(readme.Section(t, "../README.md", "Run your function locally"))
	if !slices.Equal(protectInfos, []string{"go", "go", "sh"}) || !slices.Equal(localInfos, []string{"go", "sh", "", "sh", ""}) {
		t.Fatalf("the sections' blocks are %q and %q: want the function, its test, its commands; cmd/main.go, go run and its output, curl and its output",
			protectInfos, localInfos)
	}
	if strings.TrimSpace(local[1]) != "go run ./cmd" {
		t.Fatalf("the README runs the function with %q, want go run ./cmd", local[1])
	}
	dir := t.TempDir()
	for name, src := range map[string]string{"function.go": protect[0], "function_test.go": protect[1], "cmd/main.go": local[0]} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The checksum database is not reachable from every test machine; the
	// module proxy (or the module cache) is; GitHub may not be. A proxy
	// that refuses a query for this unpublished module (403, not 404) must
	// not stop go get: "|" goes on after any error, to "off" and the
	// replace.
	out, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	var proxies []string
	for _, p := range strings.FieldsFunc(strings.TrimSpace(string(out)), func(r rune) bool { return r == ',' || r == '|' }) {
		if strings.HasPrefix(p, "http") || strings.HasPrefix(p, "file:") {
			proxies = append(proxies, p)
		}
	}
	env := environ("PATH="+pathWith(t, "go", "gcc", "as", "ld", "curl", "bash", "sh", "git"), "GOSUMDB=off",
		"GOPROXY="+strings.Join(append(proxies, "off"), "|"))
	script := "set -e\ngo mod init example.com/things\ngo mod edit -replace github.com/keygate/keygate=" + checkout + "\n" + protect[2]
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok  \texample.com/things") {
		t.Fatalf("the README's commands: %v\n%s", err, out)
	}

	port := freePort(t)
	lines, logs := start(t, build(t, dir, env), append(env, "PORT="+port))
	printed := strings.ReplaceAll(strings.Join(lines, "\n")+"\n", "localhost:"+port, "localhost:8080")
	if !readme.Pattern(local[2]).MatchString(printed) {
		t.Errorf("go run ./cmd printed:\n%s\nthe README shows:\n%s", printed, local[2])
	}
	var exports []string
	for _, l := range lines {
		if strings.HasPrefix(l, "  export ") {
			exports = append(exports, strings.TrimSpace(l))
		}
	}
	curl := exec.Command("bash", "-c", strings.Join(exports, "\n")+"\n"+local[3])
	curl.Env = env
	out, err = curl.Output()
	if err != nil {
		t.Fatalf("the README's curl commands: %v\n%s\nserver:\n%s", err, out, logs)
	}
	if string(out) != local[4] {
		t.Errorf("the README's curl commands printed:\n%s\nthe README shows:\n%s", out, local[4])
	}
}

// codeLines counts the lines of src that hold code: neither blank nor
// comments.
func codeLines(src string) int {
	n := 0
	for _, l := range strings.Split(src, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "//") {
			n++
		}
	}
	return n
}

// TestReadmeShowsProtect checks that the README shows examples/protect's
// function.go, its unit test and cmd/main.go as they are; that the
// function, package clause and imports included, is at most 15 lines of
// code (comments and blank lines aside), cmd/main.go at most 10 lines in
// all, and the unit test's body under 15.
func TestReadmeShowsProtect(t *testing.T) {
	doc, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src := map[string]string{}
	for _, f := range []string{"protect/function.go", "protect/function_test.go", "protect/cmd/main.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src[f] = string(b)
		if !bytes.Contains(doc, []byte("```go\n"+string(b)+"```\n")) {
			t.Errorf("README.md does not show examples/%s verbatim in a ```go block", f)
		}
	}
	if n := codeLines(src["protect/function.go"]); n > 15 {
		t.Errorf("the README's function has %d lines of code, want at most 15", n)
	}
	if n := strings.Count(src["protect/cmd/main.go"], "\n"); n > 10 {
		t.Errorf("the README's cmd/main.go has %d lines, want at most 10", n)
	}
	_, body, _ := strings.Cut(src["protect/function_test.go"], "func TestThings(")
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

// TestCodeLines: codeLines counts neither comments nor blank lines.
func TestCodeLines(t *testing.T) {
	if n := codeLines("// Package p.\npackage p\n\n\t// f does.\nfunc f() {}\n"); n != 2 {
		t.Errorf("codeLines = %d, want 2", n)
	}
}
