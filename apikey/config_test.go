package keygate

import (
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c != DefaultConfig() {
		t.Errorf("LoadConfig() = %+v, want the defaults %+v", c, DefaultConfig())
	}
	want := Config{Database: "(default)", Collection: "api_keys", Header: "X-API-Key", Prefix: "kg", CacheSize: 10000,
		CacheTTL: time.Minute, StaleTTL: 10 * time.Minute, NegativeTTL: 30 * time.Second, StoreTimeout: 2 * time.Second,
		FlushInterval: 10 * time.Second, DefaultMaxKeys: 100}
	if c != want {
		t.Errorf("defaults = %+v, want %+v (the README's table)", c, want)
	}
}

func TestLoadConfigValues(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{
		"GOOGLE_CLOUD_PROJECT": "p1", "FIRESTORE_DATABASE": "keys-db", "KEYS_COLLECTION": "keys",
		"API_KEY_HEADER": "X-Bingo-Key", "KEY_PREFIX": "bingo", "KEY_CACHE_SIZE": "5",
		"KEY_CACHE_TTL": "5s", "KEY_STALE_TTL": "1h", "KEY_NEGATIVE_TTL": "1s", "STORE_TIMEOUT": "500ms",
		"USAGE_FLUSH_INTERVAL": "30s", "DEFAULT_RATE_LIMIT": "2.5", "DEFAULT_BURST": "10",
		"DEFAULT_MONTHLY_QUOTA": "5000", "DEFAULT_MAX_KEYS": "7",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Project: "p1", Database: "keys-db", Collection: "keys", Header: "X-Bingo-Key", Prefix: "bingo", CacheSize: 5,
		CacheTTL: 5 * time.Second, StaleTTL: time.Hour, NegativeTTL: time.Second, StoreTimeout: 500 * time.Millisecond,
		FlushInterval: 30 * time.Second, DefaultRateLimit: 2.5, DefaultBurst: 10,
		DefaultMonthlyQuota: 5000, DefaultMaxKeys: 7}
	if c != want {
		t.Errorf("LoadConfig = %+v, want %+v", c, want)
	}
	c, _ = LoadConfig(envOf(map[string]string{"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8086"}))
	if c.Project != EmulatorProject {
		t.Errorf("project with the emulator = %q, want %q", c.Project, EmulatorProject)
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
		{"KEY_PREFIX", "k_g"},
		{"KEY_PREFIX", "averyveryverylongprefix"},
		{"API_KEY_HEADER", "X API Key"},
		{"API_KEY_HEADER", "X-Key:"},
		{"KEYS_COLLECTION", "a/b"},
		{"FIRESTORE_DATABASE", "x/y"},
		{"USAGE_FLUSH_INTERVAL", "100ms"},
		{"USAGE_FLUSH_INTERVAL", "often"},
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
		})
	}
}
