package apikey

import (
	"testing"

	"github.com/keygate/keygate/internal/problem"
)

// TestCodes: the codes internal/problem writes itself are the ones
// apikey.Code documents.
func TestCodes(t *testing.T) {
	for _, c := range []struct{ api, own Code }{
		{codeInvalidJSON, problem.CodeInvalidJSON},
		{codeBodyTooLarge, problem.CodeBodyTooLarge},
		{codeUnsupportedMediaType, problem.CodeUnsupportedMediaType},
		{codeInternal, problem.CodeInternal},
	} {
		if c.api != c.own {
			t.Errorf("apikey documents %q, internal/problem writes %q", c.api, c.own)
		}
	}
}
