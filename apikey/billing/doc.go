// Package billing exports owners' usage to Stripe Billing meters, exactly
// once: for each owner whose plan names a Stripe customer, and each UTC day
// of the last 35, one meter event for what its stored total gained since
// the last export. Each event is recorded in the store before it is sent
// (store.BillingStore.BeginExport) and sent again, as it is, until Stripe
// confirms it; docs/reference.md ("Usage exported to Stripe") argues why
// no request is billed twice or left out.
package billing
