package logging

import (
	"net"
	"net/http"
	"strings"
)

// ClientAddress says where a request's client address is: which entry of
// X-Forwarded-For the platform in front of the function wrote, counted from
// the end. Entries before it are whatever the client sent, so only the
// platform's own is the client's: the unknown-key budget is charged to it
// and the logs name it. (CLIENT_ADDRESS in docs/reference.md.)
type ClientAddress string

const (
	// CloudRun is the last entry: Cloud Run's front end (a Google Front
	// End) appends the address the connection came from, and a request
	// without the header gets one holding only that. Sources:
	// cloud.google.com/functions/docs/reference/headers ("X-Forwarded-For:
	// clientIp, proxy1Ip, proxy2Ip", each proxy appending), and a Cloud Run
	// service's headers shown in pc.atsuhiro-me.net/entry/2022/08/11/081130
	// ("x-forwarded-for": the caller's address alone).
	CloudRun ClientAddress = "cloud-run"
	// LoadBalancer is the entry before the last: Google Cloud's external
	// Application Load Balancer appends "<immediate client IP>, <global
	// forwarding rule external IP>" to what the client sent, and "only the
	// <immediate client IP> and <global forwarding rule external IP>
	// entries are provided by the load balancer"
	// (cloud.google.com/load-balancing/docs/https, X-Forwarded-For header).
	LoadBalancer ClientAddress = "load-balancer"
	// RemoteAddr is the connection's peer; X-Forwarded-For is ignored: a
	// server that clients reach directly (cmd/local without a proxy).
	RemoteAddr ClientAddress = "remote-addr"
)

// ValidClientAddress reports whether s names a ClientAddress.
func ValidClientAddress(s string) bool {
	switch ClientAddress(s) {
	case CloudRun, LoadBalancer, RemoteAddr:
		return true
	}
	return false
}

// ClientIP is r's client address as from says (any other value, "" too,
// means CloudRun). An entry that is missing (a request that did not come
// through the load balancer) or not an IP address gives the connection's
// peer instead, the platform's proxy: so no X-Forwarded-For a client writes
// can name an address it does not hold.
func ClientIP(r *http.Request, from ClientAddress) string {
	if from != RemoteAddr {
		back := 1 // from the end
		if from == LoadBalancer {
			back = 2
		}
		if ip, ok := forwardedEntry(r.Header.Values("X-Forwarded-For"), back); ok {
			return ip
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// forwardedEntry returns the back-th entry from the end of the
// X-Forwarded-For field lines xff (several lines are one list, RFC 9110
// 5.3), if it is an IP address.
func forwardedEntry(xff []string, back int) (string, bool) {
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for {
			j := strings.LastIndexByte(line, ',')
			entry := line[j+1:]
			if back--; back == 0 {
				ip := strings.TrimSpace(entry)
				return ip, net.ParseIP(ip) != nil
			}
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
	return "", false
}
