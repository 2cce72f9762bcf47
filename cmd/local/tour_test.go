package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/readme"
)

// tourStep is one command block of the README's tour and the output block
// that follows it.
type tourStep struct{ commands, output string }

// tourSteps parses the tour: each ```sh block followed by a plain ```
// block of its output.
func tourSteps(t *testing.T) []tourStep {
	t.Helper()
	infos, bodies := readme.Fenced(readme.Section(t, "../../README.md", "Tour"))
	var steps []tourStep
	for i := 0; i+1 < len(infos); i++ {
		if infos[i] == "sh" && infos[i+1] == "" {
			steps = append(steps, tourStep{bodies[i], bodies[i+1]})
			i++
		}
	}
	if len(steps) < 5 {
		t.Fatalf("the README's tour has %d command and output pairs, want at least 5", len(steps))
	}
	return steps
}

// runTour runs the tour's steps in one shell with env, as a reader pastes
// them one after the other, and checks that each prints what the README
// shows.
func runTour(t *testing.T, env []string) {
	t.Helper()
	const mark = "@@ end of step @@"
	steps := tourSteps(t)
	var script strings.Builder
	for _, s := range steps {
		script.WriteString(s.commands + "echo '" + mark + "'\n")
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Env = env
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the tour's commands: %v\n%s", err, out)
	}
	got := strings.Split(string(out), mark+"\n")
	for i, s := range steps {
		if i >= len(got) || !readme.Pattern(s.output).MatchString(got[i]) {
			printed := ""
			if i < len(got) {
				printed = got[i]
			}
			t.Errorf("tour step %d:\n%s\nprinted:\n%s\nthe README shows:\n%s", i+1, s.commands, printed, s.output)
		}
	}
}

// exportsOf returns the values of the "export NAME=VALUE" lines cmd/local
// printed, as environment entries.
func exportsOf(t *testing.T, lines []string) []string {
	t.Helper()
	var env []string
	for _, l := range lines {
		if m := regexp.MustCompile(`^  export (\w+)=(\S+)`).FindStringSubmatch(l); m != nil {
			env = append(env, m[1]+"="+m[2])
		}
	}
	if len(env) != 3 {
		t.Fatalf("cmd/local printed %d export lines, want 3: %q", len(env), lines)
	}
	return env
}

// TestReadmeTour runs the README's tour as a newcomer would, in the
// in-memory demo: cmd/local, its export lines pasted, then every command,
// each printing what the README shows.
func TestReadmeTour(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found")
	}
	_, lines := startLocal(t, cleanEnv())
	runTour(t, cleanEnv(exportsOf(t, lines)...))
}

// TestReadmeTourOnEmulator runs the tour on the emulator, with the keys
// minted by the CLI, as docs/running.md's "The tour on the emulator" says.
func TestReadmeTourOnEmulator(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found")
	}
	host, project := emulator.Project(t)
	env := cleanEnv("FIRESTORE_EMULATOR_HOST="+host, "GOOGLE_CLOUD_PROJECT="+project)
	port, _ := startLocal(t, env)
	_, blocks := readme.Fenced(readme.Section(t, "../../docs/running.md", "The tour on the emulator"))
	if len(blocks) != 3 {
		t.Fatalf("the emulator section has %d blocks, want 3", len(blocks))
	}
	// The third block, with the test's emulator and port and the CLI
	// built once (as go run would build it).
	mint := strings.NewReplacer("127.0.0.1:8086", host, "localhost:8080", "localhost:"+port,
		"go run ./cmd/apikey", filepath.Join(binaries(t), "apikey")).Replace(blocks[2])
	cmd := exec.Command("bash", "-c", mint+"echo URL=$URL; echo KEY=$KEY; echo ADMIN_KEY=$ADMIN_KEY")
	cmd.Env = env
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the emulator section's commands: %v\n%s", err, out)
	}
	exports := strings.Fields(string(out))
	if len(exports) != 3 || !strings.HasPrefix(exports[1], "KEY=kg_") || !strings.HasPrefix(exports[2], "ADMIN_KEY=kg_") {
		t.Fatalf("the emulator section minted %q", exports)
	}
	runTour(t, append(env, exports...))
}

// TestReadmeQuickStartOutput: what the quick start shows cmd/local
// printing is what it prints first ("..." standing for the keys).
func TestReadmeQuickStartOutput(t *testing.T) {
	infos, bodies := readme.Fenced(readme.Section(t, "../../README.md", "Quick start"))
	want := ""
	for i, info := range infos {
		if info == "" {
			want = bodies[i]
			break
		}
	}
	if want == "" {
		t.Fatal("the quick start shows no output")
	}
	port, lines := startLocal(t, cleanEnv())
	n := strings.Count(want, "\n")
	if len(lines) < n {
		t.Fatalf("cmd/local printed %d lines, the README shows %d", len(lines), n)
	}
	got := strings.Join(lines[:n], "\n") + "\n"
	got = strings.ReplaceAll(got, "localhost:"+port, "localhost:8080")
	if !readme.Pattern(want).MatchString(got) {
		t.Errorf("cmd/local printed:\n%s\nthe README shows:\n%s", got, want)
	}
}
