package keyrules_test

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/keyrules"
)

func TestParseLifetimeAndGrace(t *testing.T) {
	for _, c := range []struct {
		s         string
		life, gra bool // valid as a lifetime, as a grace
	}{
		{"1ns", false, true}, {"999ms", false, true}, {"0s", false, true}, {"1s", true, true},
		{"720h", true, true}, {"721h", true, false}, {"87600h", true, false}, {"87601h", false, false},
		{"-1s", false, false}, {"30d", false, false}, {"", false, false},
	} {
		if _, err := keyrules.ParseLifetime(c.s); (err == nil) != c.life {
			t.Errorf("ParseLifetime(%q) = %v, want ok %v", c.s, err, c.life)
		}
		if _, err := keyrules.ParseGrace(c.s); (err == nil) != c.gra {
			t.Errorf("ParseGrace(%q) = %v, want ok %v", c.s, err, c.gra)
		}
	}
	_, err := keyrules.ParseLifetime(strings.Repeat("9", 10_000))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("a long value is echoed whole: %.300v", err)
	}
}
