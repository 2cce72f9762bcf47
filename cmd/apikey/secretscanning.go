package main

import (
	"flag"
	"fmt"

	"github.com/keygate/keygate/apikey/keyformat"
)

var secretScanningCommand = &command{
	name:    "secret-scanning",
	args:    "pattern",
	params:  []string{"pattern"},
	summary: "print the regular expression of the keys, for GitHub's secret scanning",
	details: `
Prints the regular expression that finds keys with the configured KEY_PREFIX
in text: what GitHub's secret scanning partner program asks of an issuer
(docs/secret-scanning.md), to scan public code for them and report them to
the function's POST /v1/secret-scanning/github. It reads only KEY_PREFIX,
and contacts nothing.`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			if pos[0] != "pattern" {
				return usagef("unknown secret-scanning command %q: want pattern", pos[0])
			}
			cfg, err := c.config()
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, keyformat.Pattern(cfg.Prefix))
			return nil
		}
	},
}
