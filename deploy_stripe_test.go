package keygate

import (
	"slices"
	"strings"
	"testing"
)

// TestDeployStripe: with STRIPE_KEY_SECRET, deploy.sh --dry-run prints,
// with or without EVENTS_TOPIC, the runtime account's right to read that
// secret, then the Sweep function given STRIPE_SECRET_KEY from it (after
// the shared secrets, in one --set-secrets), its invoker and its job; the
// API function gets neither the key nor the right, since it never calls
// Stripe. STRIPE_METER_EVENT reaches both functions as configuration.
func TestDeployStripe(t *testing.T) {
	for _, tt := range []struct {
		name            string
		env             map[string]string
		grant, sweep    int // command indexes
		apiSecrets      string
		sweepSecrets    string
		account, secret string
	}{
		{"Stripe alone, default account",
			map[string]string{"STRIPE_KEY_SECRET": "stripe-secret-key", "STRIPE_METER_EVENT": "kg_requests"},
			1, 2, "", "--set-secrets=STRIPE_SECRET_KEY=stripe-secret-key:latest",
			"PROJECT_NUMBER-compute@developer.gserviceaccount.com", "stripe-secret-key"},
		{"Stripe with events, Redis and a version",
			map[string]string{"STRIPE_KEY_SECRET": "stripe-key:3", "EVENTS_TOPIC": "keygate-events", "REDIS_URL_SECRET": "keygate-redis:latest",
				"VPC_CONNECTOR": "keygate-connector", "SERVICE_ACCOUNT": "kg@demo-keygate.iam.gserviceaccount.com"},
			3, 4, "--set-secrets=REDIS_URL=keygate-redis:latest", "--set-secrets=REDIS_URL=keygate-redis:latest,STRIPE_SECRET_KEY=stripe-key:3",
			"kg@demo-keygate.iam.gserviceaccount.com", "stripe-key"},
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
			if len(cmds) != tt.sweep+3 {
				t.Fatalf("%d commands, want %d:\n%s", len(cmds), tt.sweep+3, stdout)
			}
			flagsOf := func(args []string, prefix string) []string {
				var out []string
				for _, a := range args {
					if strings.HasPrefix(a, prefix) {
						out = append(out, a)
					}
				}
				return out
			}
			api := slices.IndexFunc(cmds, func(c []string) bool { return slices.Contains(c, "--entry-point=API") })
			if api < 0 || api > tt.grant {
				t.Fatalf("the API function is deployed as command %d, want it before the grant, %d:\n%s", api+1, tt.grant+1, stdout)
			}
			if got := strings.Join(cmds[tt.grant], " "); got != "secrets add-iam-policy-binding "+tt.secret+" --project=demo-keygate --member=serviceAccount:"+
				tt.account+" --role=roles/secretmanager.secretAccessor" {
				t.Errorf("command %d is gcloud %s, want the secret's accessor", tt.grant+1, got)
			}
			if got := strings.Join(flagsOf(cmds[api], "--set-secrets="), " "); got != tt.apiSecrets {
				t.Errorf("the API function's secrets %q, want %q: it never calls Stripe", got, tt.apiSecrets)
			}
			if !slices.Contains(cmds[tt.sweep], "--entry-point=Sweep") {
				t.Fatalf("command %d is gcloud %q, want the Sweep function", tt.sweep+1, cmds[tt.sweep])
			}
			if got := strings.Join(flagsOf(cmds[tt.sweep], "--set-secrets="), " "); got != tt.sweepSecrets {
				t.Errorf("the Sweep function's secrets %q, want %q", got, tt.sweepSecrets)
			}
			if !strings.HasPrefix(strings.Join(cmds[tt.sweep+1], " "), "functions add-invoker-policy-binding keygate-sweep ") ||
				!strings.HasPrefix(strings.Join(cmds[tt.sweep+2], " "), "scheduler jobs create http keygate-sweep ") {
				t.Errorf("after the sweep: %q, %q; want its invoker and its job", cmds[tt.sweep+1], cmds[tt.sweep+2])
			}
			if v := tt.env["STRIPE_METER_EVENT"]; v != "" {
				for _, i := range []int{api, tt.sweep} {
					env := deployParseSetEnvVars(t, strings.TrimPrefix(flagsOf(cmds[i], "--set-env-vars=")[0], "--set-env-vars="))
					if env["STRIPE_METER_EVENT"] != v {
						t.Errorf("command %d: STRIPE_METER_EVENT = %q, want %q", i+1, env["STRIPE_METER_EVENT"], v)
					}
				}
			}
		})
	}
}

// TestDeployStripeRefusals: deploy.sh refuses the Stripe key itself in its
// environment (it goes through Secret Manager), never showing it, and a
// STRIPE_KEY_SECRET that is not a secret of the project; before printing
// any command.
func TestDeployStripeRefusals(t *testing.T) {
	const key = "sk_test_51Hd0NotARealKeyAtAllButLongEnough"
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"STRIPE_SECRET_KEY": key}, "deploy.sh: STRIPE_SECRET_KEY is set: put the key in Secret Manager and name the secret in STRIPE_KEY_SECRET"},
		{map[string]string{"STRIPE_SECRET_KEY": key, "STRIPE_KEY_SECRET": "stripe-secret-key"}, "deploy.sh: STRIPE_SECRET_KEY is set"},
		{map[string]string{"STRIPE_KEY_SECRET": "projects/other/secrets/stripe"}, "deploy.sh: STRIPE_KEY_SECRET=projects/other/secrets/stripe: want the name of a secret of the project"},
		{map[string]string{"STRIPE_KEY_SECRET": "stripe:0"}, "deploy.sh: STRIPE_KEY_SECRET=stripe:0: want"},
		{map[string]string{"STRIPE_KEY_SECRET": "stripe key"}, "deploy.sh: STRIPE_KEY_SECRET=stripe key: want"},
	} {
		c.env["GOOGLE_CLOUD_PROJECT"] = "demo-keygate"
		stdout, stderr, code := deployRunScript(t, deployEnv(t, c.env), "--dry-run")
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1, no command, %q", c.env, code, stdout, stderr, c.want)
		}
		if strings.Contains(stdout+stderr, key[8:]) {
			t.Errorf("%v: the output shows the key:\n%s%s", c.env, stdout, stderr)
		}
	}
}
