package ratelimit

import "testing"

// TestAddressOf: an IPv6 client is its /64, an IPv4 one (mapped or not) its
// address.
func TestAddressOf(t *testing.T) {
	for ip, want := range map[string]string{
		"203.0.113.9":               "203.0.113.9",
		"::ffff:203.0.113.9":        "203.0.113.9",
		"2001:db8:1:2::1":           "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::9": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":           "2001:db8:1:3::/64",
		"fe80::1%eth0":              "fe80::/64",
		"not an address":            "not an address",
	} {
		if got := AddressOf(ip); got != want {
			t.Errorf("AddressOf(%q) = %q, want %q", ip, got, want)
		}
	}
}
