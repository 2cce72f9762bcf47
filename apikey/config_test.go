package apikey

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/internal/redistest"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Errorf("LoadConfig() = %+v, want the defaults %+v", c, DefaultConfig())
	}
	want := Config{Database: "(default)", Collection: "api_keys", Header: "X-API-Key", Prefix: "kg", CacheSize: 10000,
		CacheTTL: time.Minute, StaleTTL: 10 * time.Minute, NegativeTTL: 30 * time.Second, StoreTimeout: 2 * time.Second,
		FlushInterval: 10 * time.Second, ShutdownTimeout: 8 * time.Second, DefaultMaxKeys: 100, RedisTimeout: 50 * time.Millisecond,
		SecretScanningKeysURL: "https://api.github.com/meta/public_keys/secret_scanning", LeakedKeyAction: "revoke",
		ClientAddress: "cloud-run", StripeMeterEvent: "api_requests"} // no DefaultScopes: the application chooses them
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults = %+v, want %+v (the README's table)", c, want)
	}
}

func TestLoadConfigValues(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{
		"GOOGLE_CLOUD_PROJECT": "p1", "FIRESTORE_DATABASE": "keys-db", "KEYS_COLLECTION": "keys",
		"API_KEY_HEADER": "X-Bingo-Key", "KEY_PREFIX": "bingo", "KEY_CACHE_SIZE": "5",
		"KEY_CACHE_TTL": "5s", "KEY_STALE_TTL": "1h", "KEY_NEGATIVE_TTL": "1s", "STORE_TIMEOUT": "500ms",
		"USAGE_FLUSH_INTERVAL": "30s", "SHUTDOWN_TIMEOUT": "9s", "DEFAULT_RATE_LIMIT": "2.5", "DEFAULT_BURST": "10",
		"DEFAULT_MONTHLY_QUOTA": "5000", "DEFAULT_MAX_KEYS": "7", "KEY_DEFAULT_SCOPES": "things:read,billing",
		"REDIS_URL": "rediss://:pw@10.0.0.3:6378", "REDIS_TIMEOUT": "20ms",
		"GITHUB_SECRET_SCANNING_KEYS_URL": "http://127.0.0.1:9/keys", "LEAKED_KEY_ACTION": "notify",
		"CLIENT_ADDRESS": "load-balancer",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Project: "p1", Database: "keys-db", Collection: "keys", Header: "X-Bingo-Key", Prefix: "bingo", CacheSize: 5,
		CacheTTL: 5 * time.Second, StaleTTL: time.Hour, NegativeTTL: time.Second, StoreTimeout: 500 * time.Millisecond,
		FlushInterval: 30 * time.Second, ShutdownTimeout: 9 * time.Second, DefaultRateLimit: 2.5, DefaultBurst: 10,
		DefaultMonthlyQuota: 5000, DefaultMaxKeys: 7, DefaultScopes: []string{"things:read", "billing"},
		RedisURL: "rediss://:pw@10.0.0.3:6378", RedisTimeout: 20 * time.Millisecond,
		SecretScanningKeysURL: "http://127.0.0.1:9/keys", LeakedKeyAction: "notify", ClientAddress: "load-balancer",
		StripeMeterEvent: "api_requests"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("LoadConfig = %+v, want %+v", c, want)
	}
	c, _ = LoadConfig(envOf(map[string]string{"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8086"}))
	if c.Project != emulatorProject {
		t.Errorf("project with the emulator = %q, want %q", c.Project, emulatorProject)
	}
	c, _ = LoadConfig(envOf(map[string]string{"KEY_STALE_TTL": "0"}))
	if c.StaleTTL != 0 {
		t.Errorf("KEY_STALE_TTL=0 gives %v", c.StaleTTL)
	}
}

func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	cases := []struct{ name, value string }{
		{"KEY_CACHE_SIZE", "lots"},
		{"KEY_CACHE_SIZE", "0"},
		{"KEY_CACHE_SIZE", "-3"},
		{"KEY_CACHE_TTL", "60"},
		{"KEY_CACHE_TTL", "0s"},
		{"KEY_CACHE_TTL", "-1m"},
		{"KEY_STALE_TTL", "soon"},
		{"KEY_STALE_TTL", "30s"}, // shorter than KEY_CACHE_TTL
		{"KEY_NEGATIVE_TTL", "1 minute"},
		{"STORE_TIMEOUT", "0"},
		{"KEY_PREFIX", "KG"},
		{"LEAKED_KEY_ACTION", "delete"},
		{"LEAKED_KEY_ACTION", "Revoke"},
		{"CLIENT_ADDRESS", "x-forwarded-for"},
		{"CLIENT_ADDRESS", "Cloud-Run"},
		{"GITHUB_SECRET_SCANNING_KEYS_URL", "api.github.com/meta"},
		{"GITHUB_SECRET_SCANNING_KEYS_URL", "ftp://example.com/keys"},
		{"KEY_PREFIX", "k_g"},
		{"KEY_PREFIX", "averyveryverylongprefix"},
		{"API_KEY_HEADER", "X API Key"},
		{"API_KEY_HEADER", "X-Key:"},
		{"KEYS_COLLECTION", "a/b"},
		{"FIRESTORE_DATABASE", "x/y"},
		{"USAGE_FLUSH_INTERVAL", "100ms"},
		{"USAGE_FLUSH_INTERVAL", "often"},
		{"SHUTDOWN_TIMEOUT", "10ms"},
		{"SHUTDOWN_TIMEOUT", "8"},
		{"DEFAULT_RATE_LIMIT", "-1"},
		{"DEFAULT_RATE_LIMIT", "fast"},
		{"DEFAULT_RATE_LIMIT", "NaN"},
		{"DEFAULT_BURST", "0"},
		{"DEFAULT_BURST", "1.5"},
		{"DEFAULT_MONTHLY_QUOTA", "-1"},
		{"DEFAULT_MONTHLY_QUOTA", "1000000000001"},
		{"DEFAULT_MONTHLY_QUOTA", "lots"},
		{"DEFAULT_MAX_KEYS", "0"},
		{"DEFAULT_MAX_KEYS", "100001"},
		{"DEFAULT_MAX_KEYS", "ten"},
		{"KEY_DEFAULT_SCOPES", "Things:Read"},
		{"KEY_DEFAULT_SCOPES", "things:read,things:read"},
		{"KEY_DEFAULT_SCOPES", "things:read,,billing"},
		{"KEY_DEFAULT_SCOPES", "things read"},
		{"KEY_DEFAULT_SCOPES", " "},
		{"REDIS_URL", "10.0.0.3:6379"},
		{"REDIS_URL", "http://10.0.0.3"},
		{"REDIS_URL", "redis://:s3cret@10.0.0.3/notadb"},
		{"REDIS_CA_CERT", "not a certificate"},
		{"REDIS_TIMEOUT", "0"},
		{"REDIS_TIMEOUT", "50"},
		{"STRIPE_SECRET_KEY", "s3cret"},
		{"STRIPE_SECRET_KEY", "sk_test_s3cret key"},
		{"STRIPE_SECRET_KEY", "pk_test_s3cret"},
		{"STRIPE_METER_EVENT", "api requests"},
		{"STRIPE_METER_EVENT", strings.Repeat("a", 101)},
		{"STRIPE_API_BASE", "localhost:12111"},
		{"STRIPE_API_BASE", "http://localhost:12111/v1"},
		{"STRIPE_API_BASE", "http://user:s3cret@localhost"},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			_, err := LoadConfig(envOf(map[string]string{c.name: c.value}))
			if err == nil {
				t.Fatalf("LoadConfig accepted %s=%q", c.name, c.value)
			}
			if !strings.Contains(err.Error(), c.name) {
				t.Errorf("error %q does not name %s", err, c.name)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestLoadConfigDefaultScopes checks KEY_DEFAULT_SCOPES: a comma-separated
// list of scope names, spaces around each ignored, checked as a key's own
// scopes are (keyrules.ValidateScopes); unset, a key stored without scopes
// grants none.
func TestLoadConfigDefaultScopes(t *testing.T) {
	for _, c := range []struct {
		value string
		want  []string // nil: an error
	}{
		{"", nil},
		{"things:check,usage:read", []string{"things:check", "usage:read"}},
		{"things:read", []string{"things:read"}},
		{" things:read , billing.v2:export-all ", []string{"things:read", "billing.v2:export-all"}},
		{strings.Repeat("s,", keyrules.MaxScopes-1) + "t", nil}, // repeated
		{"Things:Read", nil},
		{"things:read,things:read", nil},
		{"things:read, things:read", nil}, // repeated once trimmed
		{"things:read,", nil},
		{",things:read", nil},
		{"a::b", nil},
		{strings.Repeat("a", keyrules.MaxScopeLen+1), nil},
	} {
		cfg, err := LoadConfig(envOf(map[string]string{"KEY_DEFAULT_SCOPES": c.value}))
		switch {
		case c.value == "":
			if err != nil || cfg.DefaultScopes != nil {
				t.Errorf("unset: %v, %v; want no default scopes", cfg.DefaultScopes, err)
			}
		case c.want != nil:
			if err != nil || !slices.Equal(cfg.DefaultScopes, c.want) {
				t.Errorf("%q: %q, %v; want %q", c.value, cfg.DefaultScopes, err, c.want)
			}
		case err == nil:
			t.Errorf("%q: accepted as %q", c.value, cfg.DefaultScopes)
		case !strings.Contains(err.Error(), "KEY_DEFAULT_SCOPES="):
			t.Errorf("%q: error %q does not name KEY_DEFAULT_SCOPES", c.value, err)
		}
	}
	var many []string
	for i := range keyrules.MaxScopes + 1 {
		many = append(many, fmt.Sprintf("s%d", i))
	}
	cfg, err := LoadConfig(envOf(map[string]string{"KEY_DEFAULT_SCOPES": strings.Join(many[:keyrules.MaxScopes], ",")}))
	if err != nil || len(cfg.DefaultScopes) != keyrules.MaxScopes {
		t.Errorf("%d scopes: %d, %v; want them all", keyrules.MaxScopes, len(cfg.DefaultScopes), err)
	}
	if _, err := LoadConfig(envOf(map[string]string{"KEY_DEFAULT_SCOPES": strings.Join(many, ",")})); err == nil ||
		!strings.Contains(err.Error(), "KEY_DEFAULT_SCOPES=") {
		t.Errorf("%d scopes: %v, want an error naming KEY_DEFAULT_SCOPES", len(many), err)
	}
}

// TestLoadConfigScopes: KEY_SCOPES, the scopes the application checks, is
// read and checked as KEY_DEFAULT_SCOPES is; unset, none are listed.
func TestLoadConfigScopes(t *testing.T) {
	cfg, err := LoadConfig(envOf(map[string]string{"KEY_SCOPES": " things:read , things:write"}))
	if err != nil || !slices.Equal(cfg.Scopes, []string{"things:read", "things:write"}) {
		t.Errorf("KEY_SCOPES: %q, %v; want things:read and things:write", cfg.Scopes, err)
	}
	if cfg, err := LoadConfig(envOf(nil)); err != nil || cfg.Scopes != nil {
		t.Errorf("unset: %q, %v; want none listed", cfg.Scopes, err)
	}
	if _, err := LoadConfig(envOf(map[string]string{"KEY_SCOPES": "things:read,Things:Write"})); err == nil || !strings.Contains(err.Error(), "KEY_SCOPES=") {
		t.Errorf("a bad scope: %v, want an error naming KEY_SCOPES", err)
	}
}

// TestLoadConfigRedisCA: REDIS_CA_CERT is PEM certificates, for a rediss://
// REDIS_URL only.
func TestLoadConfigRedisCA(t *testing.T) {
	ca := redistest.CA(t)
	c, err := LoadConfig(envOf(map[string]string{"REDIS_URL": "rediss://10.0.0.3:6378", "REDIS_CA_CERT": ca}))
	if err != nil || c.RedisCA != ca {
		t.Errorf("a rediss:// URL and a CA: %v, RedisCA %q", err, c.RedisCA)
	}
	if _, err := LoadConfig(envOf(map[string]string{"REDIS_URL": "redis://10.0.0.3:6379", "REDIS_CA_CERT": ca})); err == nil || !strings.Contains(err.Error(), "REDIS_CA_CERT") {
		t.Errorf("a CA with redis://: %v, want an error naming REDIS_CA_CERT", err)
	}
}

// TestLoadConfigStripe checks the Stripe variables: unset, no export; set,
// read as given; and the secret key never shown by fmt, slog or JSON.
func TestLoadConfigStripe(t *testing.T) {
	c, err := LoadConfig(envOf(nil))
	if err != nil || c.StripeSecretKey != "" || c.StripeMeterEvent != "api_requests" || c.StripeAPIBase != "" {
		t.Fatalf("defaults = %q, %q, %q, %v; want no key, api_requests, Stripe's base", c.StripeSecretKey, c.StripeMeterEvent, c.StripeAPIBase, err)
	}
	const key = "sk_test_51Hs3cretVALUE"
	c, err = LoadConfig(envOf(map[string]string{"STRIPE_SECRET_KEY": key, "STRIPE_METER_EVENT": "keygate.requests",
		"STRIPE_API_BASE": "http://127.0.0.1:12111"}))
	if err != nil || string(c.StripeSecretKey) != key || c.StripeMeterEvent != "keygate.requests" || c.StripeAPIBase != "http://127.0.0.1:12111" {
		t.Fatalf("LoadConfig = %+v, %v", c, err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", slog.Any("config", c), slog.Any("key", c.StripeSecretKey))
	js, _ := json.Marshal(c)
	for _, shown := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%s %q %x", c.StripeSecretKey, c.StripeSecretKey, c.StripeSecretKey), logged.String(), string(js)} {
		if strings.Contains(shown, "s3cret") || strings.Contains(shown, fmt.Sprintf("%x", key)) {
			t.Errorf("the secret key is shown: %s", shown)
		}
		if !strings.Contains(shown, "[redacted]") {
			t.Errorf("the secret key is not marked redacted: %s", shown)
		}
	}
}
