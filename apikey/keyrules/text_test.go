package keyrules_test

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/keyrules"
)

func TestValidateOwnerIsADocumentID(t *testing.T) {
	for _, c := range []struct {
		owner string
		want  string // "" for valid
	}{
		{"acme", ""},
		{"a.b", ""},
		{"...", ""},
		{"__", ""},
		{"___", ""},
		{"__acme", ""},
		{"acme__", ""},
		{strings.Repeat("界", keyrules.MaxOwnerLen), ""},
		{"a/b", "contains '/'"},
		{"/", "contains '/'"},
		{".", "want a name other than"},
		{"..", "want a name other than"},
		{"____", "Firestore reserves"},
		{"__acme__", "Firestore reserves"},
	} {
		err := keyrules.ValidateOwner(c.owner)
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateOwner(%q) = %v, want %q", c.owner, err, c.want)
		}
	}
}
