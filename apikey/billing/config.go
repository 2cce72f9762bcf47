package billing

import (
	"net/url"
	"regexp"
	"strings"
)

// DefaultMeterEvent is the event_name of the meter events when
// STRIPE_METER_EVENT is unset: the name the meter in Stripe must have.
const DefaultMeterEvent = "api_requests"

// meterEvent is what keygate takes for an event name: Stripe caps it at 100
// characters (its API description); the characters are the ones its
// examples and dashboard use, so that a name with spaces or quotes, which a
// meter would not match, fails at start rather than at every export.
var meterEvent = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,100}$`)

// ValidMeterEvent reports whether name can be STRIPE_METER_EVENT.
func ValidMeterEvent(name string) bool { return meterEvent.MatchString(name) }

// secretKey is a Stripe secret (sk_) or restricted (rk_) key: only its
// shape is checked, never its value quoted.
var secretKey = regexp.MustCompile(`^(sk|rk)_[A-Za-z0-9_]{1,250}$`)

// ValidSecretKey reports whether key has the shape of a Stripe API key
// that can write meter events.
func ValidSecretKey(key string) bool { return secretKey.MatchString(key) }

// ValidAPIBase reports whether base can be STRIPE_API_BASE: an http or
// https URL with a host, and no path, query or user (the exporter
// appends /v1/...).
func ValidAPIBase(base string) bool {
	u, err := url.Parse(base)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		strings.TrimSuffix(u.Path, "/") == "" && u.RawQuery == "" && u.User == nil && u.Fragment == ""
}
