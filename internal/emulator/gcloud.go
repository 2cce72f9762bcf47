package emulator

import (
	"os"
	"strings"
	"testing"
)

// GcloudEnv is the test process's environment made independent of the
// developer's gcloud: no Google credentials or project (GOOGLE_*,
// GCLOUD_*, CLOUDSDK_* but the settings of how gcloud runs), no
// FIRESTORE_EMULATOR_HOST, nothing drop names, and gcloud pointed at an
// empty configuration directory with prompts and the GCE metadata server
// (a source of credentials and of a project) turned off.
func GcloudEnv(t testing.TB, drop ...string) []string {
	t.Helper()
	// gcloud settings that do not affect what it does, only how it runs.
	keep := func(k string) bool {
		return strings.HasPrefix(k, "CLOUDSDK_PYTHON") ||
			strings.HasPrefix(k, "CLOUDSDK_PROXY_") ||
			k == "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE"
	}
	dropped := map[string]bool{"FIRESTORE_EMULATOR_HOST": true}
	for _, k := range drop {
		dropped[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case dropped[k]:
		case strings.HasPrefix(k, "CLOUDSDK_") && !keep(k):
		case strings.HasPrefix(k, "GOOGLE_"), strings.HasPrefix(k, "GCLOUD_"):
		default:
			env = append(env, kv)
		}
	}
	return append(env,
		"CLOUDSDK_CONFIG="+t.TempDir(),
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
	)
}
