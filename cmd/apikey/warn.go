package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/typo"
)

// warnf writes one warning line on stderr: the command goes on, and its
// exit status is unchanged.
func (c *cli) warnf(format string, args ...any) {
	fmt.Fprintf(c.stderr, "apikey: warning: "+format+"\n", args...)
}

// warnUnknownScopes warns of each of scopes (what names them) that
// KEY_SCOPES, when it is set, does not list, with the scope it is near: a
// scope the application does not check grants nothing, and a misspelt one
// would otherwise be stored without a word.
func (c *cli) warnUnknownScopes(what string, scopes []string) {
	known := c.cfg.Scopes
	if known == nil {
		return
	}
	for _, s := range scopes {
		if slices.Contains(known, s) {
			continue
		}
		hint := "it lists " + strings.Join(known, ",")
		if m, ok := typo.Meant(s, known); ok {
			hint = "did you mean " + m + "?"
		}
		c.warnf("%s %s is not in KEY_SCOPES: %s", what, s, hint)
	}
}

// warnMistyped warns of each variable of the environment that the
// configuration does not read but is near a name it does (KEY_CACHE_TL):
// names only, never values.
func (c *cli) warnMistyped() {
	for _, m := range typo.Variables(c.environ, apikey.LoadConfig) {
		c.warnf("%s", m)
	}
}
