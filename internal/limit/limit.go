// Package limit is what the Gate's limiters answer: whose limit applied to
// a request, and what is left of it. The per-instance rate limits
// (internal/ratelimit), the meter's quota check (internal/meter) and the
// global limits (internal/globallimit) all answer a Decision; none of them
// writes a response: the Gate turns a Decision into headers and refusals.
package limit

import "time"

// Which is whose limit applied to a request.
type Which uint8

const (
	// None: no limit applied.
	None Which = iota
	// Key is the key's own limit.
	Key
	// Owner is the limit of the key's owner's plan, shared by all the
	// owner's keys.
	Owner
	// Management is the owner's budget on the Gate's management
	// endpoints (keyrules.ManageRate), or of its mints.
	Management
)

// String is the name of w in logs and problem bodies: "key", "owner",
// "management", or "" for None.
func (w Which) String() string {
	switch w {
	case Key:
		return "key"
	case Owner:
		return "owner"
	case Management:
		return "management"
	}
	return ""
}

// Decision is a limit's answer to one request: the same shape from a rate
// limit and from a quota, so that one refusal path reads both.
type Decision struct {
	// Allowed is whether the request may go on.
	Allowed bool
	// Which is whose limit applied: the one that refused, or the one with
	// the least left; None when no limit applies.
	Which Which
	// Limit is the limit: a rate's burst, or a monthly quota.
	Limit int64
	// Remaining is what the limit allows now: requests at once for a rate
	// (never negative), requests this month for a quota (negative when
	// more were used than a quota since lowered allows).
	Remaining int64
	// Reset is the seconds until a rate's bucket is full again, rounded
	// up, and RetryAfter, when a rate refused the request, how long until
	// one would pass. Both are 0 for a quota: every quota resets at the
	// start of the next UTC month (store.NextMonth), which the Gate says.
	Reset      int64
	RetryAfter time.Duration
}
