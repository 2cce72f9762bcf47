package apikey

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/globallimit"
	"github.com/keygate/keygate/internal/plans"
)

// emulatorProject is the project ID used when FIRESTORE_EMULATOR_HOST is set
// and GOOGLE_CLOUD_PROJECT is not: the emulator accepts any project, and the
// "demo-" prefix marks one that exists only there.
const emulatorProject = "demo-keygate"

// Config is keygate's configuration. LoadConfig reads it from the
// environment; docs/reference.md lists every variable with its default.
type Config struct {
	// Project is the Google Cloud project; empty means detect it from the
	// runtime's credentials.
	Project string
	// Database is the Firestore database ID.
	Database string
	// Collection is the Firestore collection that holds the keys.
	Collection string
	// Header is the request header that carries the API key.
	Header string
	// Prefix starts every key.
	Prefix string
	// CacheSize is the number of key lookups, found or not, kept in memory.
	CacheSize int
	// CacheTTL is the fresh window: a cached lookup younger than this is
	// answered without a store call.
	CacheTTL time.Duration
	// StaleTTL is the stale-if-error window: while the store fails, a key
	// last seen valid less than StaleTTL ago keeps working.
	StaleTTL time.Duration
	// NegativeTTL is how long a key that was not found stays not found.
	NegativeTTL time.Duration
	// StoreTimeout is the deadline of one store call.
	StoreTimeout time.Duration
	// FlushInterval is the most often usage counts are written, per key and
	// instance.
	FlushInterval time.Duration
	// ShutdownTimeout bounds CloseOnSignal's Close: the wait for requests
	// in flight and the flushes of the last counts, retried until then.
	// Cloud Run kills an instance 10 s after its SIGTERM; the default, 8 s,
	// leaves time to log what is still unwritten.
	ShutdownTimeout time.Duration
	// DefaultRateLimit (requests per second) and DefaultBurst apply to keys
	// without a rate_limit of their own; a rate of 0 means no limit.
	DefaultRateLimit float64
	DefaultBurst     int
	// DefaultMonthlyQuota is the monthly quota of owners whose plan sets
	// none; 0 means no quota.
	DefaultMonthlyQuota int64
	// DefaultMaxKeys is the most active keys an owner whose plan sets none
	// may hold: 1 to MaxPlanKeys.
	DefaultMaxKeys int
	// DefaultScopes are the scopes of a key stored with none, and of a key
	// minted through the keys API without naming any. Empty means such a
	// key passes only Protect("").
	DefaultScopes []string
	// RedisURL, when set, makes rate limits and monthly quotas global: kept
	// on this Redis (or Valkey) server, which all instances share, instead
	// of per instance. redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], or
	// rediss:// for TLS. While it does not answer, the per-instance limits
	// apply.
	RedisURL string
	// RedisCA holds PEM certificates that a rediss:// server's certificate
	// must chain to, instead of the system's roots (Memorystore's in-transit
	// encryption has a certificate authority of its own).
	RedisCA string
	// RedisTimeout is the deadline of one call to Redis.
	RedisTimeout time.Duration
	// SecretScanningKeysURL is where GitHub publishes the keys that sign
	// its secret scanning reports (secretscanning.go).
	SecretScanningKeysURL string
	// LeakedKeyAction is what a secret scanning report does to a live key
	// found in public: leakRevoke or leakNotify.
	LeakedKeyAction string
}

// DefaultConfig returns the configuration with every variable at its default.
func DefaultConfig() Config {
	return Config{
		Database:        "(default)",
		Collection:      "api_keys",
		Header:          "X-API-Key",
		Prefix:          "kg",
		CacheSize:       10000,
		CacheTTL:        60 * time.Second,
		StaleTTL:        10 * time.Minute,
		NegativeTTL:     30 * time.Second,
		StoreTimeout:    2 * time.Second,
		FlushInterval:   10 * time.Second,
		ShutdownTimeout: 8 * time.Second,
		DefaultMaxKeys:  store.DefaultMaxKeys,
		RedisTimeout:    globallimit.DefaultTimeout,

		SecretScanningKeysURL: defaultSecretScanningKeysURL,
		LeakedKeyAction:       leakRevoke,
	}
}

// LoadConfig reads the configuration from getenv (os.Getenv in production).
// An unset or empty variable takes its default; a bad value is an error that
// names the variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	c.Project = getenv("GOOGLE_CLOUD_PROJECT")
	if c.Project == "" && getenv("FIRESTORE_EMULATOR_HOST") != "" {
		c.Project = emulatorProject
	}
	str := func(name string, dst *string, valid func(string) bool, want string) error {
		v := getenv(name)
		if v == "" {
			return nil
		}
		if !valid(v) {
			return fmt.Errorf("%s=%q: want %s", name, v, want)
		}
		*dst = v
		return nil
	}
	dur := func(name string, dst *time.Duration, min time.Duration) error {
		v := getenv(name)
		if v == "" {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			return fmt.Errorf("%s=%q: want a Go duration of at least %v, such as 90s or 5m", name, v, min)
		}
		*dst = d
		return nil
	}
	nonEmptyPath := func(s string) bool { return !strings.Contains(s, "/") && strings.TrimSpace(s) == s }
	errs := []error{
		str("FIRESTORE_DATABASE", &c.Database, nonEmptyPath, "a Firestore database ID"),
		str("KEYS_COLLECTION", &c.Collection, nonEmptyPath, "a collection ID without '/'"),
		str("API_KEY_HEADER", &c.Header, validHeaderName, "an HTTP header name"),
		str("KEY_PREFIX", &c.Prefix, keyformat.ValidPrefix, "1 to 16 lowercase letters and digits"),
		dur("KEY_CACHE_TTL", &c.CacheTTL, time.Millisecond),
		dur("KEY_STALE_TTL", &c.StaleTTL, 0),
		dur("KEY_NEGATIVE_TTL", &c.NegativeTTL, time.Millisecond),
		dur("STORE_TIMEOUT", &c.StoreTimeout, time.Millisecond),
		dur("USAGE_FLUSH_INTERVAL", &c.FlushInterval, time.Second),
		dur("SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, 100*time.Millisecond),
		dur("REDIS_TIMEOUT", &c.RedisTimeout, time.Millisecond),
		str("GITHUB_SECRET_SCANNING_KEYS_URL", &c.SecretScanningKeysURL, validKeysURL, "an http:// or https:// URL"),
		str("LEAKED_KEY_ACTION", &c.LeakedKeyAction, validLeakAction, leakRevoke+" or "+leakNotify),
	}
	// The URL may hold a password: the error never quotes it.
	if v := getenv("REDIS_URL"); v != "" {
		if _, err := globallimit.ParseURL(v); err != nil {
			errs = append(errs, fmt.Errorf("REDIS_URL (not shown: it may hold a password): %w", err))
		} else {
			c.RedisURL = v
		}
	}
	if v := getenv("REDIS_CA_CERT"); v != "" {
		if _, err := globallimit.ParseCA(v); err != nil {
			errs = append(errs, fmt.Errorf("REDIS_CA_CERT: %w", err))
		} else if o, _ := globallimit.ParseURL(c.RedisURL); o != nil && o.TLSConfig == nil {
			errs = append(errs, errors.New("REDIS_CA_CERT is set, but REDIS_URL is not rediss://: a certificate authority needs TLS"))
		} else {
			c.RedisCA = v
		}
	}
	// The defaults are checked as a key's own limits are (ValidateLimits);
	// an explicit DEFAULT_BURST must be at least 1: unset means one second's
	// worth.
	if v := getenv("DEFAULT_RATE_LIMIT"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err == nil {
			err = store.ValidateLimits(r, 0, 0)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("DEFAULT_RATE_LIMIT=%q: want 0 (no limit) or %g to %d requests per second", v, store.MinRateLimit, store.MaxRateLimit))
		} else {
			c.DefaultRateLimit = r
		}
	}
	if v := getenv("DEFAULT_BURST"); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil {
			err = store.ValidateLimits(0, n, 0)
		}
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("DEFAULT_BURST=%q: want a whole number from 1 to %d", v, store.MaxBurst))
		} else {
			c.DefaultBurst = n
		}
	}
	if v := getenv("DEFAULT_MONTHLY_QUOTA"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			err = store.ValidateLimits(0, 0, n)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("DEFAULT_MONTHLY_QUOTA=%q: want a whole number from 0 (no quota) to %d requests a month", v, store.MaxMonthlyQuota))
		} else {
			c.DefaultMonthlyQuota = n
		}
	}
	if v := getenv("DEFAULT_MAX_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil {
			err = store.ValidateMaxKeys(n)
		}
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("DEFAULT_MAX_KEYS=%q: want a whole number from 1 to %d active keys per owner", v, store.MaxPlanKeys))
		} else {
			c.DefaultMaxKeys = n
		}
	}
	if v := getenv("KEY_CACHE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10_000_000 {
			errs = append(errs, fmt.Errorf("KEY_CACHE_SIZE=%q: want a whole number from 1 to 10000000", v))
		} else {
			c.CacheSize = n
		}
	}
	if v := getenv("KEY_DEFAULT_SCOPES"); v != "" {
		scopes := strings.Split(v, ",")
		for i := range scopes {
			scopes[i] = strings.TrimSpace(scopes[i])
		}
		if err := store.ValidateScopes(scopes); err != nil {
			errs = append(errs, fmt.Errorf("KEY_DEFAULT_SCOPES=%q: %w", v, err))
		} else {
			c.DefaultScopes = scopes
		}
	}
	for _, err := range errs {
		if err != nil {
			return Config{}, fmt.Errorf("configuration: %w", err)
		}
	}
	if c.StaleTTL != 0 && c.StaleTTL < c.CacheTTL {
		return Config{}, fmt.Errorf("configuration: KEY_STALE_TTL=%v is shorter than KEY_CACHE_TTL=%v: set it to 0 to turn stale-if-error off", c.StaleTTL, c.CacheTTL)
	}
	return c, nil
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// plans are the configured defaults of owners' plans.
func (c Config) plans() plans.Defaults {
	return plans.Defaults{RateLimit: c.DefaultRateLimit, Burst: c.DefaultBurst, MonthlyQuota: c.DefaultMonthlyQuota, MaxKeys: c.DefaultMaxKeys}
}
