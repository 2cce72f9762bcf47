package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/keygate/keygate/internal/globallimit"
)

var configCommand = &command{
	name:    "config",
	args:    "check",
	params:  []string{"check"},
	summary: "check the configuration in the environment with the library's rules",
	details: `
Reads the configuration variables (GOOGLE_CLOUD_PROJECT, FIRESTORE_DATABASE,
KEYS_COLLECTION, API_KEY_HEADER, KEY_PREFIX, KEY_CACHE_SIZE, KEY_CACHE_TTL,
KEY_STALE_TTL, KEY_NEGATIVE_TTL, STORE_TIMEOUT, USAGE_FLUSH_INTERVAL,
SHUTDOWN_TIMEOUT, DEFAULT_RATE_LIMIT, DEFAULT_BURST, DEFAULT_MONTHLY_QUOTA, DEFAULT_MAX_KEYS,
KEY_DEFAULT_SCOPES, KEY_SCOPES, REDIS_URL, REDIS_CA_CERT, REDIS_TIMEOUT,
GITHUB_SECRET_SCANNING_KEYS_URL, LEAKED_KEY_ACTION, CLIENT_ADDRESS) with the rules a Gate applies when it starts, and either
prints the configuration in effect or fails naming the variable. It warns on
stderr, without failing, of a variable set that is one or two edits from
one of these (KEY_CACHE_TL: did you mean KEY_CACHE_TTL?), naming it but
never its value, and of a KEY_DEFAULT_SCOPES scope that KEY_SCOPES, when
set, does not list. deploy.sh
runs it before it deploys, so that a bad value fails the deploy rather than
every request of the deployed function. It contacts neither Firestore nor Redis, and never prints REDIS_URL's
password.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			if pos[0] != "check" {
				return usagef("unknown config command %q: want check", pos[0])
			}
			c.warnMistyped()
			cfg, err := c.config()
			if err != nil {
				return err
			}
			c.warnUnknownScopes("KEY_DEFAULT_SCOPES names", cfg.DefaultScopes)
			project := cfg.Project
			if project == "" {
				project = "(detected from the credentials)"
			}
			scopes := strings.Join(cfg.DefaultScopes, ",")
			if scopes == "" {
				scopes = "(the application's)"
			}
			limits := "per instance"
			if cfg.RedisURL != "" {
				limits = fmt.Sprintf("global on Redis at %s (timeout %v)", globallimit.Where(cfg.RedisURL), cfg.RedisTimeout)
			}
			fmt.Fprintf(c.stdout, "configuration ok: project %s, database %s, collection %s, header %s, prefix %s, key cache %d for %v (stale %v, not found %v), store timeout %v, usage flush %v, shutdown %v, default scopes %s, limits %s, client address %s\n",
				project, cfg.Database, cfg.Collection, cfg.Header, cfg.Prefix, cfg.CacheSize, cfg.CacheTTL, cfg.StaleTTL, cfg.NegativeTTL, cfg.StoreTimeout, cfg.FlushInterval, cfg.ShutdownTimeout, scopes, limits, cfg.ClientAddress)
			return nil
		}
	},
}
