package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey/memstore"
)

// planJSON returns the plan as "plan show OWNER --json" prints it.
func (h *harness) planJSON(owner string) planView {
	h.t.Helper()
	r := h.ok("plan", "show", owner, "--json")
	var v planView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		h.t.Fatalf("plan show --json printed %q: %v", r.stdout, err)
	}
	return v
}

// TestPlan checks plan set, show and clear on the emulator: set merges the
// given limits into the stored plan, show marks the defaults, clear returns
// the owner to them.
func TestPlan(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["DEFAULT_RATE_LIMIT"] = "2"
	h.env["DEFAULT_MONTHLY_QUOTA"] = "5000"

	v := h.planJSON("acme")
	want := planView{Owner: "acme", Effective: planLimits{RateLimit: 2, Burst: 2, MonthlyQuota: 5000, MaxKeys: 100, MintRate: 1, MintBurst: 20},
		Defaults: []string{"rate_limit", "burst", "monthly_quota", "max_keys", "mint_rate", "mint_burst"}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("show without a plan = %+v\nwant %+v", v, want)
	}
	r := h.ok("plan", "show", "acme")
	for _, line := range []string{"plan:      none", "rate:      2/s (default DEFAULT_RATE_LIMIT)", "quota:     5000 requests a month (default DEFAULT_MONTHLY_QUOTA)", "max keys:  100 active (default DEFAULT_MAX_KEYS)",
		"mints:     1/s (default), burst 20 (default)"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("plan show lacks %q:\n%s", line, r.stdout)
		}
	}

	h.ok("plan", "set", "acme", "--rate", "10", "--max-keys", "3")
	r = h.ok("plan", "set", "acme", "--quota", "700", "--json") // keeps rate and max-keys
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Plan == nil || *v.Plan != (planLimits{RateLimit: 10, MonthlyQuota: 700, MaxKeys: 3}) || v.UpdatedAt == nil {
		t.Errorf("stored plan = %+v, %v", v.Plan, v.UpdatedAt)
	}
	if v.Effective != (planLimits{RateLimit: 10, Burst: 10, MonthlyQuota: 700, MaxKeys: 3, MintRate: 1, MintBurst: 20}) ||
		!reflect.DeepEqual(v.Defaults, []string{"burst", "mint_rate", "mint_burst"}) {
		t.Errorf("effective = %+v, defaults %v", v.Effective, v.Defaults)
	}
	r = h.ok("plan", "show", "acme")
	if !strings.Contains(r.stdout, "rate:      10/s (plan)") || !strings.Contains(r.stdout, "max keys:  3 active (plan)") {
		t.Errorf("plan show:\n%s", r.stdout)
	}

	// The key writes: set, shown, and kept by a later set of another limit.
	h.ok("plan", "set", "acme", "--mint-rate", "0.5", "--mint-burst", "40")
	r = h.ok("plan", "show", "acme")
	if !strings.Contains(r.stdout, "mints:     0.5/s (plan), burst 40 (plan)") {
		t.Errorf("plan show with key writes:\n%s", r.stdout)
	}

	// A flag given as 0 returns its limit to the default.
	h.ok("plan", "set", "acme", "--quota", "0")
	if v := h.planJSON("acme"); v.Effective.MonthlyQuota != 5000 || v.Plan.MaxKeys != 3 || v.Plan.MintRate != 0.5 || v.Plan.MintBurst != 40 {
		t.Errorf("after --quota 0: %+v", v)
	}

	r = h.ok("plan", "clear", "acme")
	if !strings.Contains(r.stdout, "Cleared the plan") {
		t.Errorf("plan clear printed %q", r.stdout)
	}
	if v := h.planJSON("acme"); v.Plan != nil || len(v.Defaults) != 6 {
		t.Errorf("after clear: %+v", v)
	}
	r = h.ok("plan", "clear", "acme")
	if !strings.Contains(r.stdout, "has no plan") {
		t.Errorf("second plan clear printed %q", r.stdout)
	}

}

// TestPlanStripeCustomer: plan set --stripe-customer links an owner to a
// Stripe customer, on the emulator and in memory. Like the limits, the link
// is merged: a later set of a limit keeps it, a set of the link keeps the
// limits; --stripe-customer "" unlinks, and plan clear, which deletes the
// whole plan, unlinks too. show prints it, as text and as JSON.
func TestPlanStripeCustomer(t *testing.T) {
	t.Parallel()
	const cus = "cus_NffrFeUfNV2Hib"
	check := func(t *testing.T, run func(args ...string) string) {
		view := func() planView {
			t.Helper()
			var v planView
			if err := json.Unmarshal([]byte(run("plan", "show", "acme", "--json")), &v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		if v := view(); v.StripeCustomer != "" {
			t.Errorf("no plan: stripe_customer %q", v.StripeCustomer)
		}
		if out := run("plan", "show", "acme"); !strings.Contains(out, "stripe:    none: usage not exported\n") {
			t.Errorf("plan show without a link:\n%s", out)
		}
		run("plan", "set", "acme", "--quota", "700")
		out := run("plan", "set", "acme", "--stripe-customer", cus)
		if !strings.Contains(out, "stripe:    "+cus+"\n") || !strings.Contains(out, "quota:     700 requests a month (plan)") {
			t.Errorf("plan set --stripe-customer printed:\n%s", out)
		}
		run("plan", "set", "acme", "--rate", "5")
		if v := view(); v.StripeCustomer != cus || v.Plan == nil || v.Plan.MonthlyQuota != 700 || v.Plan.RateLimit != 5 {
			t.Errorf("after set --rate: %+v, want the link and both limits kept", v)
		}
		run("plan", "set", "acme", "--stripe-customer", "")
		if v := view(); v.StripeCustomer != "" || v.Plan == nil || v.Plan.MonthlyQuota != 700 {
			t.Errorf(`after set --stripe-customer "": %+v, want unlinked, the limits kept`, v)
		}
		run("plan", "set", "acme", "--stripe-customer", cus)
		run("plan", "clear", "acme")
		if v := view(); v.StripeCustomer != "" || v.Plan != nil {
			t.Errorf("after clear: %+v, want no plan and no link", v)
		}
	}
	t.Run("memory", func(t *testing.T) {
		st := closingMem{memstore.New()}
		check(t, func(args ...string) string { return memCLI(t, st, nil, args...) })
	})
	t.Run("emulator", func(t *testing.T) {
		h := newHarness(t)
		check(t, func(args ...string) string { return h.ok(args...).stdout })
		// The field as stored, for the sweep and the other stores to read.
		h.ok("plan", "set", "acme", "--stripe-customer", cus)
		if got := h.ownerDocument("acme")["stripe_customer"]; got != cus {
			t.Errorf("stored stripe_customer = %v, want %s", got, cus)
		}
	})
}

// TestPlanErrors checks the plan command's refusals: exit 1 with one line
// for bad values, 2 for a bad command line, before any store call.
func TestPlanErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"plan", "set", "acme"}, 2, "apikey: plan set needs at least one of --rate, --burst, --quota, --max-keys, --mint-rate, --mint-burst, --stripe-customer\n"},
		{[]string{"plan", "set", "acme", "--stripe-customer", "sub_NffrFeUfNV2Hib"}, 1, "apikey: --stripe-customer \"sub_NffrFeUfNV2Hib\": want empty, or a Stripe customer ID: \"cus_\" and up to 251 letters and digits\n"},
		{[]string{"plan", "set", "acme", "--stripe-customer", "cus_" + strings.Repeat("x", 5000)}, 1, "apikey: --stripe-customer \""},
		{[]string{"plan", "show", "acme", "--stripe-customer", "cus_1"}, 2, "apikey: plan show takes only --json\n"},
		{[]string{"plan", "clear", "acme", "--stripe-customer", ""}, 2, "apikey: plan clear takes no flags\n"},
		{[]string{"plan", "set", "acme", "--mint-rate", "21"}, 1, "apikey: --mint-rate 21: want 0 (the default, 1) or 0.001 to 20 creates and rotations per second\n"},
		{[]string{"plan", "set", "acme", "--mint-burst", "101"}, 1, "apikey: --mint-burst 101: want 0 (the default, 20) to 100 creates and rotations\n"},
		{[]string{"plan", "show", "acme", "--rate", "1"}, 2, "apikey: plan show takes only --json\n"},
		{[]string{"plan", "clear", "acme", "--json"}, 2, "apikey: plan clear takes no flags\n"},
		{[]string{"plan", "drop", "acme"}, 2, "apikey: unknown plan action \"drop\": want set, show or clear\n"},
		{[]string{"plan", "show"}, 2, "apikey: missing OWNER\n"},
		{[]string{"plan", "set", "acme", "--max-keys", "100001"}, 1, "apikey: --max-keys 100001: want 0 (DEFAULT_MAX_KEYS) to 100000 active keys\n"},
		{[]string{"plan", "set", "acme", "--rate", "NaN"}, 1, "apikey: --rate NaN: want"},
		{[]string{"plan", "set", "acme", "--quota", "-1"}, 1, "apikey: --quota -1: want"},
		{[]string{"plan", "show", "a/b"}, 1, "apikey: owner contains '/'\n"},
		{[]string{"plan", "clear", ".."}, 1, "apikey: owner is \"..\": want a name other than . and ..\n"},
		{[]string{"plan", "set", "__acme__", "--rate", "1"}, 1, "apikey: owner starts and ends with \"__\", which Firestore reserves\n"},
		{[]string{"create", "--owner", "a/b"}, 1, "apikey: --owner contains '/'\n"},
	} {
		code, stdout, stderr, st := runFake(t, nil, c.args...)
		firstLine, _, _ := strings.Cut(stderr, "\n")
		if len(firstLine) > 400 {
			t.Errorf("%.60q: an error line of %d bytes: the echo is not bounded", c.args, len(firstLine))
		}
		if code != c.code || stdout != "" || len(st.calls) != 0 || !strings.HasPrefix(firstLine+"\n", c.want) {
			t.Errorf("%.200q: exit %d, stdout %q, stderr %q, store calls %v; want %d, %q", c.args, code, stdout, stderr, st.calls, c.code, c.want)
		}
	}
}

// TestCreateCapped checks that create refuses a key past the owner's
// max_keys, naming the limit, unless --force is given.
func TestCreateCapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("plan", "set", "acme", "--max-keys", "2")
	first := h.createJSON("--owner", "acme")
	h.createJSON("--owner", "acme")
	r := h.run("create", "--owner", "acme")
	want := "apikey: owner \"acme\" already holds 2 active keys, the most its plan allows: revoke one, raise the limit with 'apikey plan set OWNER --max-keys N', or pass --force\n"
	if r.code != 1 || r.stdout != "" || r.stderr != want {
		t.Errorf("create past the cap: exit %d, stdout %q, stderr %q; want 1, nothing, %q", r.code, r.stdout, r.stderr, want)
	}
	if n := len(h.listJSON("acme")); n != 2 {
		t.Errorf("%d keys after the refused create, want 2", n)
	}
	h.createJSON("--owner", "acme", "--force")
	if n := len(h.listJSON("acme")); n != 3 {
		t.Errorf("%d keys after create --force, want 3", n)
	}
	// Past the cap, rotation is refused too, unless --force is given: a
	// rotation goes one key over max_keys only from within it.
	r = h.run("rotate", first.ID)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "holds more than 2 active keys, the most its plan allows") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("rotate past the cap: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	h.ok("rotate", first.ID, "--force")
	r = h.run("rotate", first.ID, "--force")
	if r.code != 1 || !strings.Contains(r.stderr, "was rotated already and its replacement") {
		t.Errorf("rotate --force of a replaced key: exit %d, stderr %q; want it refused", r.code, r.stderr)
	}

	// Without a plan, DEFAULT_MAX_KEYS.
	h.env["DEFAULT_MAX_KEYS"] = "1"
	h.createJSON("--owner", "bob")
	r = h.run("create", "--owner", "bob")
	if r.code != 1 || !strings.Contains(r.stderr, "already holds 1 active keys, the most the default DEFAULT_MAX_KEYS allows") {
		t.Errorf("create past DEFAULT_MAX_KEYS: exit %d, stderr %q", r.code, r.stderr)
	}
	// Raising the limit, or revoking a key, makes room: acme holds 4
	// active keys now (the rotated one, until its grace ends, and its
	// replacement).
	h.ok("plan", "set", "acme", "--max-keys", "5")
	h.createJSON("--owner", "acme")
	if r := h.run("create", "--owner", "acme"); r.code != 1 {
		t.Errorf("create past the raised cap: exit %d", r.code)
	}
	h.ok("revoke", first.ID)
	h.createJSON("--owner", "acme")
}
