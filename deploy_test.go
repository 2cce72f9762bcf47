package keygate

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/emulator"
)

// deployExecTimeout bounds every process the deploy tests start.
const deployExecTimeout = 2 * time.Minute

// deployFunctionVars are the function configuration variables deploy.sh
// passes through with --set-env-vars.
var deployFunctionVars = []string{
	"FIRESTORE_DATABASE", "KEYS_COLLECTION", "API_KEY_HEADER", "KEY_PREFIX",
	"KEY_CACHE_SIZE", "KEY_CACHE_TTL", "KEY_STALE_TTL", "KEY_NEGATIVE_TTL",
	"STORE_TIMEOUT", "USAGE_FLUSH_INTERVAL", "SHUTDOWN_TIMEOUT", "DEFAULT_RATE_LIMIT", "DEFAULT_BURST",
	"DEFAULT_MONTHLY_QUOTA", "DEFAULT_MAX_KEYS", "KEY_DEFAULT_SCOPES", "KEY_SCOPES",
	"REDIS_URL", "REDIS_TIMEOUT", "GITHUB_SECRET_SCANNING_KEYS_URL", "LEAKED_KEY_ACTION",
	"CLIENT_ADDRESS",
	"EVENTS_TOPIC", "STRIPE_METER_EVENT",
}

// deploySettingVars are deploy.sh's own settings.
var deploySettingVars = []string{
	"GOOGLE_CLOUD_PROJECT", "FUNCTION_NAME", "REGION", "SERVICE_ACCOUNT",
	"CPU", "MEMORY", "CONCURRENCY", "TIMEOUT", "MAX_INSTANCES",
	"VPC_CONNECTOR", "VPC_EGRESS", "REDIS_URL_SECRET", "REDIS_CA_SECRET",
	"SWEEP_FUNCTION_NAME", "SCHEDULER_SERVICE_ACCOUNT", "STRIPE_KEY_SECRET",
}

// deploySecretVars are function variables deploy.sh passes only from
// Secret Manager (--set-secrets), with the setting that names the secret.
var deploySecretVars = map[string]string{"REDIS_CA_CERT": "REDIS_CA_SECRET", "STRIPE_SECRET_KEY": "STRIPE_KEY_SECRET"}

// deployEnv returns an environment for deploy.sh that is independent of the
// developer's: none of the script's variables, no Google credentials or
// project, and gcloud pointed at an empty configuration directory with
// prompts and the GCE metadata server (a source of credentials and of a
// project) turned off. extra is added last.
func deployEnv(t *testing.T, extra map[string]string) []string {
	t.Helper()
	env := emulator.GcloudEnv(t, slices.Concat(deployFunctionVars, deploySettingVars, slices.Collect(maps.Keys(deploySecretVars)))...)
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// deployRequireBash skips the test when bash is not installed.
func deployRequireBash(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found on PATH")
	}
}

// deployRun runs cmd with a deadline and returns its stdout, stderr and
// exit code; it fails the test if cmd could not be run or did not exit.
func deployRun(t *testing.T, name string, args []string, env []string, stdin string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deployExecTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q: timed out after %v\nstderr:\n%s", name, args, deployExecTimeout, errOut.String())
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		code = exitErr.ExitCode()
	default:
		t.Fatalf("%s %q: %v\nstderr:\n%s", name, args, err, errOut.String())
	}
	return out.String(), errOut.String(), code
}

// deployRunScript runs deploy.sh with bash and returns its stdout, stderr and exit
// code.
func deployRunScript(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	deployRequireBash(t)
	return deployRun(t, "bash", append([]string{"deploy.sh"}, args...), env, "")
}

// deployShellWords evaluates a dry-run command line with bash, gcloud replaced by a
// function that prints its arguments, and returns gcloud's arguments. It
// checks that the printed command survives copy and paste into a shell.
func deployShellWords(t *testing.T, line string) []string {
	t.Helper()
	const script = `gcloud() { printf '%s\0' "$@"; }; eval "$(cat)"`
	out, errOut, code := deployRun(t, "bash", []string{"-c", script}, []string{"PATH=" + os.Getenv("PATH")}, line)
	if code != 0 || errOut != "" {
		t.Fatalf("bash could not evaluate the dry-run output %q: exit %d\n%s", line, code, errOut)
	}
	return strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
}

// deployParseSetEnvVars parses a --set-env-vars value written with an alternate
// delimiter, ^DELIM^K=V<DELIM>K2=V2 (see `gcloud topic escaping`).
func deployParseSetEnvVars(t *testing.T, v string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(v, "^")
	delim, list, ok2 := strings.Cut(rest, "^")
	if !ok || !ok2 || delim == "" {
		t.Fatalf("--set-env-vars=%q: does not start with ^DELIM^", v)
	}
	m := map[string]string{}
	for _, item := range strings.Split(list, delim) {
		k, val, ok := strings.Cut(item, "=")
		if !ok {
			t.Fatalf("--set-env-vars=%q: item %q is not KEY=VALUE", v, item)
		}
		if _, dup := m[k]; dup {
			t.Fatalf("--set-env-vars=%q: %s given twice", v, k)
		}
		m[k] = val
	}
	return m
}

func TestDeployDryRun(t *testing.T) {
	deployRequireBash(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	sourceDir, err := filepath.EvalSymlinks(wd)
	if err != nil {
		t.Fatal(err)
	}
	_, lookErr := exec.LookPath("gcloud")
	haveGcloud := lookErr == nil

	allVars := map[string]string{
		"GOOGLE_CLOUD_PROJECT": "demo-keygate",
		"FIRESTORE_DATABASE":   "keys-db",
		// A comma would split a plain comma-separated list.
		"KEYS_COLLECTION":       "api_keys,v2",
		"API_KEY_HEADER":        "X-Key",
		"KEY_PREFIX":            "acme",
		"KEY_CACHE_SIZE":        "5000",
		"KEY_CACHE_TTL":         "30s",
		"KEY_STALE_TTL":         "15m",
		"KEY_NEGATIVE_TTL":      "10s",
		"STORE_TIMEOUT":         "1500ms",
		"USAGE_FLUSH_INTERVAL":  "20s",
		"DEFAULT_RATE_LIMIT":    "10",
		"DEFAULT_BURST":         "40",
		"DEFAULT_MONTHLY_QUOTA": "100000",
		"DEFAULT_MAX_KEYS":      "25",
		// A comma-separated list: the delimiter keeps it whole.
		"KEY_DEFAULT_SCOPES": "bingo:check,keys:manage",
		"REDIS_URL":          "rediss://10.0.0.3:6378/1",
		"REDIS_TIMEOUT":      "100ms",
	}

	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		needsGcloud bool
		wantCode    int
		// For exit 0 with --dry-run: arguments gcloud must get, argument
		// prefixes it must not get, and the exact --set-env-vars map.
		wantArgs    []string
		wantNoArgs  []string
		wantEnvVars map[string]string
		// For the other cases: substrings of stdout and stderr.
		wantStdout []string
		wantStderr []string
	}{
		{
			name:     "defaults",
			args:     []string{"--dry-run"},
			env:      map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate"},
			wantCode: 0,
			wantArgs: []string{
				"--gen2", "--runtime=go126", "--trigger-http", "--entry-point=API",
				"--allow-unauthenticated", "--source=" + sourceDir,
				"--project=demo-keygate", "--region=us-central1",
				"--cpu=1", "--memory=512Mi", "--concurrency=80", "--timeout=60s",
			},
			wantNoArgs:  []string{"--service-account", "--max-instances", "--vpc-connector", "--egress-settings", "--set-secrets"},
			wantEnvVars: map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate"},
		},
		{
			name: "deployment settings",
			args: []string{"--dry-run"},
			env: map[string]string{
				"GOOGLE_CLOUD_PROJECT": "my-project",
				"FUNCTION_NAME":        "keygate-staging",
				"REGION":               "europe-west1",
				"SERVICE_ACCOUNT":      "keygate@my-project.iam.gserviceaccount.com",
				"CPU":                  "2",
				"MEMORY":               "1Gi",
				"CONCURRENCY":          "40",
				"TIMEOUT":              "30s",
				"MAX_INSTANCES":        "5",
			},
			wantArgs: []string{
				"keygate-staging", "--project=my-project", "--region=europe-west1",
				"--service-account=keygate@my-project.iam.gserviceaccount.com",
				"--cpu=2", "--memory=1Gi", "--concurrency=40", "--timeout=30s", "--max-instances=5",
			},
			wantNoArgs:  []string{"--region=us-central1", "--cpu=1", "--memory=512Mi", "--concurrency=80", "--timeout=60s"},
			wantEnvVars: map[string]string{"GOOGLE_CLOUD_PROJECT": "my-project"},
		},
		{
			name: "Memorystore through a connector",
			args: []string{"--dry-run"},
			env: map[string]string{
				"GOOGLE_CLOUD_PROJECT": "demo-keygate",
				"REDIS_URL":            "redis://10.0.0.3:6379",
				"VPC_CONNECTOR":        "keygate-connector",
			},
			wantArgs:    []string{"--vpc-connector=keygate-connector", "--egress-settings=private-ranges-only"},
			wantNoArgs:  []string{"--set-secrets"},
			wantEnvVars: map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "REDIS_URL": "redis://10.0.0.3:6379"},
		},
		{
			name: "Memorystore AUTH in a secret, all egress",
			args: []string{"--dry-run"},
			env: map[string]string{
				"GOOGLE_CLOUD_PROJECT": "demo-keygate",
				"REDIS_URL_SECRET":     "keygate-redis:latest",
				"REDIS_CA_SECRET":      "keygate-redis-ca:2",
				"REDIS_TIMEOUT":        "80ms",
				"VPC_CONNECTOR":        "projects/demo-keygate/locations/us-central1/connectors/keygate",
				"VPC_EGRESS":           "all",
				"CPU":                  "1000m",
			},
			wantArgs: []string{
				"--vpc-connector=projects/demo-keygate/locations/us-central1/connectors/keygate",
				"--egress-settings=all", "--set-secrets=REDIS_URL=keygate-redis:latest,REDIS_CA_CERT=keygate-redis-ca:2", "--cpu=1000m",
			},
			wantEnvVars: map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "REDIS_TIMEOUT": "80ms"},
		},
		{
			name:        "one request at a time below 1 vCPU",
			args:        []string{"--dry-run"},
			env:         map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "CPU": ".5", "MEMORY": "256Mi", "CONCURRENCY": "1"},
			wantArgs:    []string{"--cpu=.5", "--memory=256Mi", "--concurrency=1"},
			wantEnvVars: map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate"},
		},
		{
			name:        "function configuration passed through",
			args:        []string{"--dry-run"},
			env:         allVars,
			wantArgs:    []string{"--project=demo-keygate"},
			wantEnvVars: allVars,
		},
		{
			name: "unset and empty variables not passed",
			args: []string{"--dry-run"},
			env: map[string]string{
				"GOOGLE_CLOUD_PROJECT": "demo-keygate",
				"KEY_PREFIX":           "acme",
				"KEY_CACHE_TTL":        "",
				"SERVICE_ACCOUNT":      "",
				"MAX_INSTANCES":        "",
			},
			wantNoArgs: []string{"--service-account", "--max-instances"},
			wantEnvVars: map[string]string{
				"GOOGLE_CLOUD_PROJECT": "demo-keygate",
				"KEY_PREFIX":           "acme",
			},
		},
		{
			name:        "project from gcloud configuration",
			args:        []string{"--dry-run"},
			env:         map[string]string{"CLOUDSDK_CORE_PROJECT": "configured-project"},
			needsGcloud: true,
			wantArgs:    []string{"--project=configured-project"},
			wantEnvVars: map[string]string{"GOOGLE_CLOUD_PROJECT": "configured-project"},
		},
		{
			name:       "missing project",
			args:       []string{"--dry-run"},
			wantCode:   1,
			wantStderr: []string{"no project", "GOOGLE_CLOUD_PROJECT", "gcloud config set project"},
		},
		{
			name:       "value containing the delimiter",
			args:       []string{"--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "KEYS_COLLECTION": "keys@v2"},
			wantCode:   1,
			wantStderr: []string{"KEYS_COLLECTION=keys@v2", "'@'"},
		},
		{
			name:       "concurrency below 1 vCPU",
			args:       []string{"--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "CPU": "500m"},
			wantCode:   1,
			wantStderr: []string{"CPU=500m with CONCURRENCY=80", "below 1 vCPU"},
		},
		{
			name:       "bad CPU",
			args:       []string{"--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "CPU": "one"},
			wantCode:   1,
			wantStderr: []string{"CPU=one: want a number of vCPUs"},
		},
		{
			name:       "bad concurrency",
			args:       []string{"--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "CONCURRENCY": "0"},
			wantCode:   1,
			wantStderr: []string{"CONCURRENCY=0: want a whole number"},
		},
		{
			name:       "egress without a connector",
			args:       []string{"--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "VPC_EGRESS": "all"},
			wantCode:   1,
			wantStderr: []string{"VPC_EGRESS=all without VPC_CONNECTOR"},
		},
		{
			name:       "bad egress",
			args:       []string{"--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "VPC_CONNECTOR": "c", "VPC_EGRESS": "private"},
			wantCode:   1,
			wantStderr: []string{"VPC_EGRESS=private: want private-ranges-only or all"},
		},
		{
			name:       "Redis password in the plain configuration",
			args:       []string{"--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "REDIS_URL": "redis://:s3cret@10.0.0.3:6379"},
			wantCode:   1,
			wantStderr: []string{"REDIS_URL contains '@'", "REDIS_URL_SECRET"},
		},
		{
			name:       "certificate in the plain configuration",
			args:       []string{"--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "REDIS_CA_CERT": "-----BEGIN CERTIFICATE-----"},
			wantCode:   1,
			wantStderr: []string{"REDIS_CA_CERT is set", "REDIS_CA_SECRET"},
		},
		{
			name:       "Redis URL given twice",
			args:       []string{"--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "REDIS_URL": "redis://10.0.0.3", "REDIS_URL_SECRET": "r:1"},
			wantCode:   1,
			wantStderr: []string{"REDIS_URL and REDIS_URL_SECRET are both set"},
		},
		{
			name:       "bad Redis URL",
			args:       []string{"--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "REDIS_URL": "10.0.0.3:6379"},
			wantCode:   1,
			wantStderr: []string{"REDIS_URL (not shown", "want redis://"},
		},
		{
			name:       "unknown argument",
			args:       []string{"--dry_run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate"},
			wantCode:   2,
			wantStderr: []string{"unknown argument: --dry_run", "Usage: deploy.sh"},
		},
		{
			name:       "too many arguments",
			args:       []string{"--dry-run", "--dry-run"},
			env:        map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate"},
			wantCode:   2,
			wantStderr: []string{"too many arguments", "Usage: deploy.sh"},
		},
		{
			name:     "help",
			args:     []string{"--help"},
			wantCode: 0,
			wantStdout: append(append([]string{
				"Usage: deploy.sh [--dry-run]", "keygate", "us-central1", "512Mi", "default: 80", "60s", "private-ranges-only",
			}, deploySettingVars...), deployFunctionVars...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsGcloud && !haveGcloud {
				t.Skip("gcloud not found on PATH")
			}
			stdout, stderr, code := deployRunScript(t, deployEnv(t, tt.env), tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, s := range tt.wantStdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout does not mention %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr does not mention %q:\n%s", s, stderr)
				}
			}
			if strings.Contains(stdout+stderr, "s3cret") {
				t.Errorf("the output shows the Redis password:\n%s%s", stdout, stderr)
			}
			if tt.wantEnvVars == nil {
				if code != 0 && stdout != "" {
					t.Errorf("stdout = %q on failure, want nothing", stdout)
				}
				return
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want nothing", stderr)
			}
			if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
				t.Fatalf("dry-run output is not one line: %q", stdout)
			}
			args := deployShellWords(t, strings.TrimSuffix(stdout, "\n"))
			name := "keygate"
			if v := tt.env["FUNCTION_NAME"]; v != "" {
				name = v
			}
			if len(args) < 3 || args[0] != "functions" || args[1] != "deploy" || args[2] != name {
				t.Fatalf("gcloud arguments %q, want them to start with functions deploy %s", args, name)
			}
			for _, want := range tt.wantArgs {
				if !slices.Contains(args, want) {
					t.Errorf("gcloud arguments %q lack %q", args, want)
				}
			}
			var envFlags []string
			for _, a := range args {
				for _, bad := range tt.wantNoArgs {
					if strings.HasPrefix(a, bad) {
						t.Errorf("gcloud arguments include %q, want no %q", a, bad)
					}
				}
				if v, ok := strings.CutPrefix(a, "--set-env-vars="); ok {
					envFlags = append(envFlags, v)
				}
			}
			if len(envFlags) != 1 {
				t.Fatalf("gcloud arguments %q have %d --set-env-vars flags, want 1", args, len(envFlags))
			}
			got := deployParseSetEnvVars(t, envFlags[0])
			for k, v := range tt.wantEnvVars {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("--set-env-vars %s = %q (present %v), want %q", k, g, ok, v)
				}
			}
			for k, v := range got {
				if _, ok := tt.wantEnvVars[k]; !ok {
					t.Errorf("--set-env-vars has unexpected %s=%q", k, v)
				}
			}
		})
	}
}

// TestDeployPassesEveryFunctionVariable: deployFunctionVars, which
// TestDeployDryRun checks deploy.sh passes through and documents, are every
// variable the function's configuration reads (LoadConfig), but the project,
// which deploy.sh always sets, the emulator's and STRIPE_API_BASE (a
// stand-in's), which a deployed function must not have, and the secrets
// (deploySecretVars), which it passes from Secret Manager only: never as
// plain variables.
func TestDeployPassesEveryFunctionVariable(t *testing.T) {
	read := map[string]bool{}
	if _, err := LoadConfig(func(name string) string { read[name] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	delete(read, "GOOGLE_CLOUD_PROJECT")
	delete(read, "FIRESTORE_EMULATOR_HOST")
	delete(read, "STRIPE_API_BASE")
	for v := range deploySecretVars {
		if slices.Contains(deployFunctionVars, v) {
			t.Errorf("deploy.sh passes %s, a secret, as a plain variable", v)
		}
		if !read[v] {
			t.Errorf("deploy.sh passes %s from Secret Manager, which the function does not read", v)
		}
		delete(read, v)
	}
	for _, v := range deployFunctionVars {
		if !read[v] {
			t.Errorf("deploy.sh passes %s, which the function does not read", v)
		}
		delete(read, v)
	}
	for v := range read {
		t.Errorf("the function reads %s, which deploy.sh does not pass", v)
	}
}

// TestDeployGcloudNoCredentials runs deploy.sh for real against the
// installed gcloud with no credentials, without and with EVENTS_TOPIC. gcloud parses every flag before it
// looks for an account, so stopping at the missing account (exit 1), not at
// argument parsing (exit 2), shows that the command line deploy.sh builds is
// one gcloud accepts.
func TestDeployGcloudNoCredentials(t *testing.T) {
	deployRequireBash(t)
	if _, err := exec.LookPath("gcloud"); err != nil {
		t.Skip("gcloud not found on PATH")
	}
	env := deployEnv(t, map[string]string{
		"GOOGLE_CLOUD_PROJECT": "demo-keygate",
		"SERVICE_ACCOUNT":      "keygate@demo-keygate.iam.gserviceaccount.com",
		"MAX_INSTANCES":        "3",
		"KEYS_COLLECTION":      "api_keys,v2",
		"KEY_PREFIX":           "acme",
		"KEY_CACHE_TTL":        "30s",
	})
	deployWantAccepted(t, env, "gcloud.functions.deploy", "deploy.sh")

	// With events, the first command that needs an account: the project's
	// number for the default account, else the topic's create (its
	// describe, failing, is not shown).
	for _, c := range []struct{ account, command string }{
		{"", "gcloud.projects.describe"},
		{"keygate@demo-keygate.iam.gserviceaccount.com", "gcloud.pubsub.topics.create"},
	} {
		t.Run(c.command, func(t *testing.T) {
			env := deployEnv(t, map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", "EVENTS_TOPIC": "keygate-events", "SERVICE_ACCOUNT": c.account})
			deployWantAccepted(t, env, c.command, "deploy.sh")
		})
	}
}

// TestDeployChecksConfiguration: deploy.sh refuses a configuration the
// function would refuse, naming the variable, before it calls gcloud (the
// dry run prints no command).
func TestDeployChecksConfiguration(t *testing.T) {
	for _, c := range []struct{ name, value, want string }{
		{"KEY_CACHE_TTL", "abc", `KEY_CACHE_TTL="abc": want a Go duration`},
		{"KEY_PREFIX", "Not-A-Prefix", `KEY_PREFIX="Not-A-Prefix"`},
		{"KEY_DEFAULT_SCOPES", "Bingo:Check", `KEY_DEFAULT_SCOPES="Bingo:Check"`},
		{"KEY_STALE_TTL", "1s", "KEY_STALE_TTL=1s is shorter than KEY_CACHE_TTL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := deployEnv(t, map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-keygate", c.name: c.value})
			stdout, stderr, code := deployRunScript(t, env, "--dry-run")
			if code != 1 || stdout != "" || !strings.Contains(stderr, "deploy.sh: the function's configuration is invalid: ") || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, no command, and the invalid variable", code, stdout, stderr)
			}
			if strings.Contains(stderr, "exit status") {
				t.Errorf("stderr shows go run's exit status line: %q", stderr)
			}
		})
	}
}

// TestDeployDryRunAcceptedByGcloud runs the commands deploy.sh --dry-run
// prints for Memorystore (REDIS_URL and a connector; the URL in a secret,
// all egress, another instance shape), for events (the topic, its
// publisher, the Sweep function, its invoker and the scheduler job, created
// and updated) and for Stripe (the secret's accessor, the Sweep function
// with the key, its invoker and job) with the installed gcloud and no credentials: gcloud parses
// every flag before it looks for an account, so stopping at the missing
// account (exit 1), not at argument parsing (exit 2), shows that each
// printed command is one gcloud accepts.
func TestDeployDryRunAcceptedByGcloud(t *testing.T) {
	deployRequireBash(t)
	if _, err := exec.LookPath("gcloud"); err != nil {
		t.Skip("gcloud not found on PATH")
	}
	for _, c := range []map[string]string{
		{"REDIS_URL": "redis://10.0.0.3:6379", "REDIS_TIMEOUT": "100ms", "VPC_CONNECTOR": "keygate-connector"},
		{"REDIS_URL_SECRET": "keygate-redis:latest", "REDIS_CA_SECRET": "keygate-redis-ca:1", "VPC_CONNECTOR": "projects/demo-keygate/locations/us-central1/connectors/keygate",
			"VPC_EGRESS": "all", "CPU": "2", "MEMORY": "1Gi", "CONCURRENCY": "250", "MAX_INSTANCES": "3"},
		{"EVENTS_TOPIC": "projects/demo-events/topics/keygate-events", "SERVICE_ACCOUNT": "keygate@demo-keygate.iam.gserviceaccount.com",
			"SCHEDULER_SERVICE_ACCOUNT": "sweeper@demo-keygate.iam.gserviceaccount.com", "REDIS_URL_SECRET": "keygate-redis:latest", "VPC_CONNECTOR": "keygate-connector"},
		{"STRIPE_KEY_SECRET": "stripe-secret-key", "STRIPE_METER_EVENT": "api_requests", "SERVICE_ACCOUNT": "keygate@demo-keygate.iam.gserviceaccount.com",
			"REDIS_URL_SECRET": "keygate-redis:latest"},
	} {
		t.Run(cmp.Or(c["EVENTS_TOPIC"], c["STRIPE_KEY_SECRET"], c["VPC_CONNECTOR"]), func(t *testing.T) {
			c["GOOGLE_CLOUD_PROJECT"] = "demo-keygate"
			env := deployEnv(t, c)
			out, stderr, code := deployRunScript(t, env, "--dry-run")
			if code != 0 {
				t.Fatalf("dry run: exit %d\n%s", code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if c["EVENTS_TOPIC"] != "" || c["STRIPE_KEY_SECRET"] != "" {
				// The job's update, which a run makes when the job exists.
				for _, line := range lines {
					if l, ok := strings.CutPrefix(line, "gcloud scheduler jobs create http "); ok {
						lines = append(lines, "gcloud scheduler jobs update http "+l)
					}
				}
			}
			for _, line := range lines {
				command := deployCommand(t, deployShellWords(t, line))
				t.Run(command, func(t *testing.T) { deployWantAccepted(t, env, command, "-c", line) })
			}
		})
	}
}

// deployCommand is the gcloud command of args, as gcloud names it in its
// errors: gcloud.functions.deploy.
func deployCommand(t *testing.T, args []string) string {
	t.Helper()
	for _, words := range []int{4, 3, 2} { // the longest first
		if len(args) < words {
			continue
		}
		switch c := strings.Join(args[:words], " "); c {
		case "scheduler jobs create http", "scheduler jobs update http",
			"pubsub topics create", "pubsub topics add-iam-policy-binding",
			"pubsub subscriptions create", "pubsub subscriptions add-iam-policy-binding",
			"iam service-accounts create", "secrets create", "secrets add-iam-policy-binding",
			"functions deploy", "functions add-invoker-policy-binding":
			return "gcloud." + strings.ReplaceAll(c, " ", ".")
		}
	}
	t.Fatalf("deploy.sh printed gcloud %q, a command the tests do not know", args)
	return ""
}

// TestDeployEvents: with EVENTS_TOPIC, deploy.sh --dry-run prints the
// topic (an ID in the project, or a full name in another), the runtime
// account's right to publish to it, the function with EVENTS_TOPIC, the
// Sweep function (private, the same source, configuration, secrets and
// connector), the scheduler account's right to invoke it, and the job that
// POSTs to it every 5 minutes with that account's OIDC token; in that
// order, the topic before the function that publishes to it.
func TestDeployEvents(t *testing.T) {
	for _, tt := range []struct {
		name                         string
		env                          map[string]string
		topic, topicProject, sweep   string
		runtimeAccount, schedAccount string
	}{
		{"topic ID, default accounts",
			map[string]string{"EVENTS_TOPIC": "keygate-events"},
			"keygate-events", "demo-keygate", "keygate-sweep",
			"PROJECT_NUMBER-compute@developer.gserviceaccount.com", "PROJECT_NUMBER-compute@developer.gserviceaccount.com"},
		{"full topic name, the runtime account",
			map[string]string{"EVENTS_TOPIC": "projects/demo-events/topics/kg-events", "FUNCTION_NAME": "auth", "SERVICE_ACCOUNT": "kg@demo-keygate.iam.gserviceaccount.com",
				"REDIS_URL_SECRET": "keygate-redis:latest", "VPC_CONNECTOR": "keygate-connector"},
			"kg-events", "demo-events", "auth-sweep",
			"kg@demo-keygate.iam.gserviceaccount.com", "kg@demo-keygate.iam.gserviceaccount.com"},
		{"the scheduler's own account and sweep name",
			map[string]string{"EVENTS_TOPIC": "keygate-events", "SWEEP_FUNCTION_NAME": "kg-sweeper", "SERVICE_ACCOUNT": "kg@demo-keygate.iam.gserviceaccount.com",
				"SCHEDULER_SERVICE_ACCOUNT": "sweeper@demo-keygate.iam.gserviceaccount.com"},
			"keygate-events", "demo-keygate", "kg-sweeper",
			"kg@demo-keygate.iam.gserviceaccount.com", "sweeper@demo-keygate.iam.gserviceaccount.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["GOOGLE_CLOUD_PROJECT"] = "demo-keygate"
			stdout, stderr, code := deployRunScript(t, deployEnv(t, tt.env), "--dry-run")
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			var cmds [][]string
			for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
				cmds = append(cmds, deployShellWords(t, line))
			}
			if len(cmds) != 6 {
				t.Fatalf("%d commands, want 6:\n%s", len(cmds), stdout)
			}
			want := func(i int, prefix string, flags ...string) {
				t.Helper()
				if got := strings.Join(cmds[i], " "); !strings.HasPrefix(got, prefix+" ") {
					t.Errorf("command %d is gcloud %s, want gcloud %s ...", i+1, got, prefix)
				}
				for _, f := range flags {
					if !slices.Contains(cmds[i], f) {
						t.Errorf("command %d, gcloud %q, lacks %q", i+1, cmds[i], f)
					}
				}
			}
			sweepURL := "https://us-central1-demo-keygate.cloudfunctions.net/" + tt.sweep
			want(0, "pubsub topics create "+tt.topic, "--project="+tt.topicProject)
			want(1, "pubsub topics add-iam-policy-binding "+tt.topic, "--project="+tt.topicProject,
				"--member=serviceAccount:"+tt.runtimeAccount, "--role=roles/pubsub.publisher")
			want(2, "functions deploy "+cmp.Or(tt.env["FUNCTION_NAME"], "keygate"), "--entry-point=API", "--allow-unauthenticated")
			want(3, "functions deploy "+tt.sweep, "--entry-point=Sweep", "--no-allow-unauthenticated", "--gen2", "--runtime=go126", "--trigger-http", "--timeout=180s")
			want(4, "functions add-invoker-policy-binding "+tt.sweep, "--project=demo-keygate", "--region=us-central1",
				"--member=serviceAccount:"+tt.schedAccount)
			want(5, "scheduler jobs create http "+tt.sweep, "--project=demo-keygate", "--location=us-central1",
				"--schedule=*/5 * * * *", "--http-method=POST", "--uri="+sweepURL, "--oidc-token-audience="+sweepURL,
				"--oidc-service-account-email="+tt.schedAccount)
			// The two functions differ only in name, entry point, access and
			// timeout: the same source, configuration, secrets and network.
			shared := func(args []string) []string {
				var out []string
				for _, a := range args[3:] {
					switch {
					case strings.HasPrefix(a, "--entry-point="), strings.HasSuffix(a, "allow-unauthenticated"), strings.HasPrefix(a, "--timeout="):
					default:
						out = append(out, a)
					}
				}
				return out
			}
			if api, sweep := shared(cmds[2]), shared(cmds[3]); !slices.Equal(api, sweep) {
				t.Errorf("the functions' flags differ:\nAPI   %q\nSweep %q", api, sweep)
			}
			var env string
			for _, a := range cmds[3] {
				if v, ok := strings.CutPrefix(a, "--set-env-vars="); ok {
					env = v
				}
			}
			if got := deployParseSetEnvVars(t, env)["EVENTS_TOPIC"]; got != tt.env["EVENTS_TOPIC"] {
				t.Errorf("the Sweep function's EVENTS_TOPIC = %q, want %q", got, tt.env["EVENTS_TOPIC"])
			}
		})
	}
}

// deployWantAccepted runs bash with args (deploy.sh itself, or -c and a
// printed command line) in env, which has no credentials, and checks that
// gcloud's command (gcloud.functions.deploy) got as far as looking for an
// account. gcloud writes a .gcloudignore
// into the source directory when it uploads the source; it must not get
// that far.
func deployWantAccepted(t *testing.T, env []string, command string, args ...string) {
	t.Helper()
	const ignoreFile = ".gcloudignore"
	_, statErr := os.Stat(ignoreFile)
	stdout, stderr, code := deployRun(t, "bash", args, env, "")
	line := strings.Join(args, " ")
	if _, err := os.Stat(ignoreFile); statErr != nil && err == nil {
		os.Remove(ignoreFile)
		t.Errorf("gcloud without credentials created %s", ignoreFile)
	}
	if code == 2 {
		t.Fatalf("gcloud rejected the arguments of %s (exit 2):\n%s", line, stderr)
	}
	if code != 1 {
		t.Fatalf("%s: exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", line, code, stdout, stderr)
	}
	want := "(" + command + ") You do not currently have an active account selected."
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not mention %q:\n%s", want, stderr)
	}
	for _, bad := range []string{"unrecognized arguments", "argument --", "Invalid value"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr mentions %q, an argument error:\n%s", bad, stderr)
		}
	}
}
