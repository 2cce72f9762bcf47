package apikey

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/billing"
	"github.com/keygate/keygate/apikey/events"
	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/internal/globallimit"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/plans"
)

// emulatorProject is the project ID used when FIRESTORE_EMULATOR_HOST is set
// and GOOGLE_CLOUD_PROJECT is not: the emulator accepts any project, and the
// "demo-" prefix marks one that exists only there.
const emulatorProject = "demo-keygate"

// Config is keygate's configuration: LoadConfig reads it from the
// environment, and docs/reference.md gives each field's variable, default
// and reasons.
type Config struct {
	Project               string        // the Google Cloud project; empty: detected from the credentials
	Database              string        // the Firestore database ID
	Collection            string        // the Firestore collection of the keys
	Header                string        // the request header that carries the key
	Prefix                string        // starts every key
	CacheSize             int           // key lookups, found or not, kept in memory
	CacheTTL              time.Duration // a lookup younger than this is answered without a store call
	StaleTTL              time.Duration // while the store fails, a key seen valid this recently works
	NegativeTTL           time.Duration // a key not found stays not found this long
	StoreTimeout          time.Duration // the deadline of one store call
	FlushInterval         time.Duration // usage counts are written at most this often, per key and instance
	ShutdownTimeout       time.Duration // bounds CloseOnSignal's Close
	DefaultRateLimit      float64       // requests per second of a key without its own; 0: no limit
	DefaultBurst          int           // with DefaultRateLimit; 0: one second's worth
	DefaultMonthlyQuota   int64         // of an owner whose plan sets none; 0: no quota
	DefaultMaxKeys        int           // active keys of an owner whose plan sets none
	DefaultScopes         []string      // granted by a key stored without scopes
	Scopes                []string      // the scopes the application checks, for apikey's warnings; nil: not listed
	RedisURL              string        // where limits and quotas are shared by all instances; empty: per instance
	RedisCA               string        // PEM certificates a rediss:// server's must chain to
	RedisTimeout          time.Duration // the deadline of one Redis call
	SecretScanningKeysURL string        // where GitHub publishes the keys that sign its reports
	LeakedKeyAction       string        // what a report does to a live key: "revoke" or "notify"
	ClientAddress         string        // which X-Forwarded-For entry is the client's: "cloud-run", "load-balancer" or "remote-addr"
	EventsTopic           string        // the Pub/Sub topic of events (an ID in Project, or a full name); empty: none
	StripeSecretKey       Secret        // the Stripe API key the sweep exports usage with; empty: no export
	StripeMeterEvent      string        // the event_name of the meter events
	StripeAPIBase         string        // where Stripe's API is; empty: Stripe's own (tests point it at a stand-in)
}

// DefaultConfig is the configuration with every variable at its default.
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
		DefaultMaxKeys:  keyrules.DefaultMaxKeys,
		RedisTimeout:    globallimit.DefaultTimeout,

		SecretScanningKeysURL: defaultSecretScanningKeysURL,
		LeakedKeyAction:       leakRevoke,
		ClientAddress:         string(logging.CloudRun),
		StripeMeterEvent:      billing.DefaultMeterEvent,
	}
}

// LoadConfig reads the configuration from getenv (os.Getenv in production):
// an unset variable takes its default, a bad one is an error naming it.
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
		str("CLIENT_ADDRESS", &c.ClientAddress, logging.ValidClientAddress, "cloud-run, load-balancer or remote-addr"),
		str("STRIPE_METER_EVENT", &c.StripeMeterEvent, billing.ValidMeterEvent, "1 to 100 letters, digits and _ . : -"),
	}
	if v := getenv("STRIPE_API_BASE"); v != "" { // not quoted: it could hold a password
		if !billing.ValidAPIBase(v) {
			errs = append(errs, errors.New("STRIPE_API_BASE (not shown): want an http:// or https:// URL without a user, path or query"))
		} else {
			c.StripeAPIBase = v
		}
	}
	// The key is never quoted: an error names the variable alone.
	if v := getenv("STRIPE_SECRET_KEY"); v != "" {
		if !billing.ValidSecretKey(v) {
			errs = append(errs, errors.New("STRIPE_SECRET_KEY (not shown): want a Stripe secret or restricted key, sk_... or rk_..."))
		} else {
			c.StripeSecretKey = Secret(v)
		}
	}
	if v := getenv("EVENTS_TOPIC"); v != "" {
		if _, err := events.ParseTopic(c.Project, v); err != nil {
			errs = append(errs, fmt.Errorf("EVENTS_TOPIC=%q: %w", v, err))
		} else {
			c.EventsTopic = v
		}
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
			err = keyrules.ValidateLimits(r, 0, 0)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("DEFAULT_RATE_LIMIT=%q: want 0 (no limit) or %g to %d requests per second", v, keyrules.MinRateLimit, keyrules.MaxRateLimit))
		} else {
			c.DefaultRateLimit = r
		}
	}
	if v := getenv("DEFAULT_BURST"); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil {
			err = keyrules.ValidateLimits(0, n, 0)
		}
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("DEFAULT_BURST=%q: want a whole number from 1 to %d", v, keyrules.MaxBurst))
		} else {
			c.DefaultBurst = n
		}
	}
	if v := getenv("DEFAULT_MONTHLY_QUOTA"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			err = keyrules.ValidateLimits(0, 0, n)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("DEFAULT_MONTHLY_QUOTA=%q: want a whole number from 0 (no quota) to %d requests a month", v, keyrules.MaxMonthlyQuota))
		} else {
			c.DefaultMonthlyQuota = n
		}
	}
	if v := getenv("DEFAULT_MAX_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil {
			err = keyrules.ValidateMaxKeys(n)
		}
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("DEFAULT_MAX_KEYS=%q: want a whole number from 1 to %d active keys per owner", v, keyrules.MaxPlanKeys))
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
	scopes := func(name string, dst *[]string) error {
		v := getenv(name)
		if v == "" {
			return nil
		}
		list := strings.Split(v, ",")
		for i := range list {
			list[i] = strings.TrimSpace(list[i])
		}
		if err := keyrules.ValidateScopes(list); err != nil {
			return fmt.Errorf("%s=%q: %w", name, v, err)
		}
		*dst = list
		return nil
	}
	errs = append(errs, scopes("KEY_DEFAULT_SCOPES", &c.DefaultScopes), scopes("KEY_SCOPES", &c.Scopes))
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

// Secret is a configuration value that is never printed: fmt, slog and
// JSON show it as "[redacted]" (or "" when it is empty), so that a Config
// logged or printed whole keeps it.
type Secret string

const redacted = "[redacted]"

func (s Secret) shown() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.shown() }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return strconv.Quote(s.shown()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }

// MarshalText implements encoding.TextMarshaler (JSON included).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

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
