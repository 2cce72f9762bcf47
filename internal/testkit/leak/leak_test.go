package leak

import "testing"

func TestIn(t *testing.T) {
	keys := map[string]string{"valid": "kg_0123456789abcdefghijABCDEFGHIJ"}
	for _, c := range []struct {
		text, want string
	}{
		{"no key here", ""},
		{"hint kg_…GHIJ only", ""},
		{"path /v1/keys/kg_0123456789a", "kg_012345678"},
		{"tail ABCDEFGHIJ and cdefghijABCD", "cdefghijABCD"},
	} {
		if got, name := In(c.text, keys); got != c.want || (got != "" && name != "valid") {
			t.Errorf("In(%q) = %q, %q; want %q, valid", c.text, got, name, c.want)
		}
	}
}
