package logging

import (
	"net/http/httptest"
	"testing"
)

// TestClientIP: each setting takes the entry its platform writes, counted
// from the end, whatever the client put before it; a missing entry, or one
// that is not an address, gives the connection's peer, never an entry the
// client wrote.
func TestClientIP(t *testing.T) {
	const peer = "192.0.2.1"
	for _, c := range []struct {
		name string
		xff  []string // field lines; nil: no header
		from ClientAddress
		want string
	}{
		{"cloud run: the front end's entry", []string{"203.0.113.9"}, CloudRun, "203.0.113.9"},
		{"cloud run: a spoofed entry before it", []string{"198.51.100.7, 203.0.113.9"}, CloudRun, "203.0.113.9"},
		{"cloud run: the last of several lines", []string{"198.51.100.7", "10.0.0.1,203.0.113.9"}, CloudRun, "203.0.113.9"},
		{"cloud run: the default", []string{"198.51.100.7, 203.0.113.9"}, "", "203.0.113.9"},
		{"cloud run: IPv6", []string{"2001:db8::1"}, CloudRun, "2001:db8::1"},
		{"cloud run: not an address", []string{"198.51.100.7, nonsense"}, CloudRun, peer},
		{"cloud run: no header", nil, CloudRun, peer},
		{"load balancer: the entry before its own", []string{"198.51.100.7, 203.0.113.9, 34.120.0.1"}, LoadBalancer, "203.0.113.9"},
		{"load balancer: across lines", []string{"203.0.113.9", "34.120.0.1"}, LoadBalancer, "203.0.113.9"},
		{"load balancer: only one entry (not through it)", []string{"198.51.100.7"}, LoadBalancer, peer},
		{"load balancer: spoofed entries only count before", []string{"6.6.6.6, 7.7.7.7, 203.0.113.9, 34.120.0.1"}, LoadBalancer, "203.0.113.9"},
		{"remote address: the header ignored", []string{"203.0.113.9"}, RemoteAddr, peer},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = peer + ":1234"
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, c.from); got != c.want {
				t.Errorf("ClientIP(X-Forwarded-For %q, %q) = %s, want %s", c.xff, c.from, got, c.want)
			}
		})
	}
	for _, s := range []string{"cloud-run", "load-balancer", "remote-addr"} {
		if !ValidClientAddress(s) {
			t.Errorf("%s is not valid", s)
		}
	}
	for _, s := range []string{"", "Cloud-Run", "xff"} {
		if ValidClientAddress(s) {
			t.Errorf("%q is valid", s)
		}
	}
}
