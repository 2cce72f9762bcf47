package billing

// Summary is what one export did, as the Sweep function answers it.
type Summary struct {
	MeterEvents   int    `json:"meter_events"`   // meter events Stripe confirmed, resends included
	Resent        int    `json:"resent"`         // of them, attempts recorded by an earlier run and sent again
	Failed        int    `json:"failed"`         // sends that failed (5xx, timeout, network): the next run sends them again
	OwnersRefused int    `json:"owners_refused"` // owners Stripe refused in this run (a 4xx): skipped until their plan changes
	OwnersSkipped int    `json:"owners_skipped"` // owners skipped for a refusal of their current plan
	InDoubt       int    `json:"in_doubt"`       // days left alone: their pending attempt is older than MaxResendAge (an ERROR each)
	RateLimited   bool   `json:"rate_limited"`   // Stripe answered 429: the run stopped sending
	More          bool   `json:"more"`           // a bound was reached, or the run stopped early: the next run goes on
	Error         string `json:"error,omitempty"`
}
