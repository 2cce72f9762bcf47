package apikey

import (
	"log/slog"

	"github.com/keygate/keygate/apikey/billing"
	"github.com/keygate/keygate/apikey/store"
)

// BillingExporter returns the exporter of owners' usage to Stripe that cfg
// asks for, on s, logging to log; nil without STRIPE_SECRET_KEY, and then
// nothing about billing is built, read or sent. The Gate's Sweep runs
// it; so does apikey sweep.
func BillingExporter(cfg Config, s store.Store, log *slog.Logger) *billing.Exporter {
	if cfg.StripeSecretKey == "" {
		return nil
	}
	return billing.New(s, billing.Options{SecretKey: string(cfg.StripeSecretKey), APIBase: cfg.StripeAPIBase,
		EventName: cfg.StripeMeterEvent, Log: log})
}
