package main

// Browser tests of the console for every key holder: a submit without the
// script, a key that cannot manage keys, and a manager's view of each key
// (ID, last use, its usage, revoked keys, rotations), at 375 px with the
// keyboard alone.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/internal/browsertest"
)

// grantClipboard lets the page at base read and write the clipboard.
func grantClipboard(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: base,
		}); err != nil {
			t.Fatalf("granting %s: %v", name, err)
		}
	}
}

// createKey mints a key of grandma with the CLI.
func createKey(t *testing.T, env []string, args ...string) createdKey {
	t.Helper()
	var k createdKey
	if err := json.Unmarshal(apikey(t, env, append([]string{"create", "--owner", "grandma", "--json"}, args...)...), &k); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestConsoleWithoutScriptKeepsTheKeyOutOfTheAddress submits the sign-in
// form with JavaScript disabled, as before the script loads: the browser
// posts to the page, which sends it back by 303, and neither the address
// nor any entry of the history holds the key.
func TestConsoleWithoutScriptKeepsTheKeyOutOfTheAddress(t *testing.T) {
	base, _, admin := consoleServer(t, nil)
	ctx := browsertest.New(t, 1280, 900)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "opening the console without scripts", chromedp.Navigate(base+"/console"), chromedp.WaitVisible("", textbox("API key")))
	if n := eval[int](t, ctx, `document.querySelectorAll('#chart svg').length + (document.getElementById('app').hidden ? 0 : 1)`); n != 0 {
		t.Fatal("the script ran")
	}
	// The history, or nil while the tab is between pages.
	history := func() []*page.NavigationEntry {
		t.Helper()
		h, err := chromedp.Call(ctx, page.GetNavigationHistory, cdp.Empty{})
		if err != nil {
			return nil
		}
		return h.Entries
	}
	before := len(history())
	do(t, ctx, "typing the key and pressing Enter",
		chromedp.SendKeys("", admin.Key, textbox("API key")),
		chromedp.KeyEvent(kb.Enter),
	)
	var entries []*page.NavigationEntry
	for deadline := time.Now().Add(10 * time.Second); len(entries) <= before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the submit did not navigate: history %d entries", len(entries))
		}
		entries = history()
	}
	do(t, ctx, "waiting for the page again", chromedp.WaitVisible("", textbox("API key")))
	secret := admin.Key[len("kg_"):]
	for _, e := range entries {
		if strings.Contains(e.URL, secret) || strings.Contains(e.URL, "?") || strings.Contains(e.UserTypedURL, secret) {
			t.Errorf("a history entry holds the key or a query: %q", strings.ReplaceAll(e.URL, secret, "…"))
		}
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || loc != base+"/console" {
		t.Errorf("the address after the submit = %q (%v), want %s/console", strings.ReplaceAll(loc, secret, "…"), err, base)
	}
	if v := eval[string](t, ctx, `document.getElementById('api-key').value`); v != "" {
		t.Errorf("the page after the submit is not a new one: the field holds %q", v)
	}
}

// TestConsoleForAKeyHolder signs in, at 375 px with the keyboard alone,
// with a key that has usage:read but not keys:manage: it sees its own
// details, copies its ID, sees its usage chart, and is told what managing
// keys needs. A key with bingo:check alone sees its details and is told
// what seeing usage needs.
func TestConsoleForAKeyHolder(t *testing.T) {
	// No flush while the test runs, however slow the machine: the key's
	// last use stays "never" (it is the flushed one), and the chart shows
	// the request all the same (usage adds this instance's unflushed
	// counts). With the default 10 s, a loaded machine flushed before the
	// details were read.
	base, env, _ := consoleServer(t, []string{"USAGE_FLUSH_INTERVAL=1h"})
	reader := createKey(t, env, "--name", "reader", "--scopes", "usage:read")
	checker := createKey(t, env, "--name", "checker", "--scopes", "bingo:check")
	ctx := browsertest.New(t, 375, 740)
	check := watch(t, ctx)
	grantClipboard(t, ctx, base)
	signInByKeyboard := func(key string) {
		t.Helper()
		do(t, ctx, "signing in by keyboard",
			chromedp.Navigate(base+"/console"),
			chromedp.WaitVisible("", textbox("API key")),
			chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`),
			browsertest.TabTo(`e.id === 'api-key'`, 10),
			chromedp.KeyEvent(key),
			chromedp.KeyEvent(kb.Enter),
			chromedp.WaitVisible("", browsertest.ByRole("heading", "Your key")),
		)
	}

	// A request of the data plane, counted; the console's calls are
	// management, not counted.
	if code, _ := apiCall(t, "X-API-Key", "GET", base+"/", reader.Key, ""); code != 200 {
		t.Fatalf("GET / with the reader = %d", code)
	}
	signInByKeyboard(reader.Key)
	do(t, ctx, "waiting for the chart", chromedp.WaitVisible(chromedp.CSS(`#chart [role="img"]`)))
	wantNoOverflow(t, ctx, "a key holder signed in")
	details := eval[string](t, ctx, `document.getElementById('self-details').innerText.replace(/\s+/g, ' ')`)
	for _, want := range []string{"Name reader", "Key ID " + reader.ID, "Hint " + keyformat.Hint(reader.Key), "Scopes usage:read", "Status active", "Last used never"} {
		if !strings.Contains(details, want) {
			t.Errorf("the key's details %q lack %q", details, want)
		}
	}
	if got, want := eval[string](t, ctx, `document.getElementById('self-manage').textContent`),
		"Managing this owner's keys (create, rotate, revoke) needs a key with the scope keys:manage."; got != want {
		t.Errorf("the page says %q, want %q", got, want)
	}
	if n, err := chromedp.Run(ctx, browsertest.Count("heading", "Keys")); err != nil || n != 0 {
		t.Errorf("%d Keys headings (%v): a key holder sees no key list", n, err)
	}
	if n, err := chromedp.Run(ctx, browsertest.Count("button", "Create key")); err != nil || n != 0 {
		t.Errorf("%d Create key buttons (%v), want none", n, err)
	}
	label, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#chart [role="img"]`), "aria-label"))
	if err != nil || !strings.Contains(label.Value, "in all on 1 day") {
		t.Errorf("the chart %q (%v), want the GET / of today", label.Value, err)
	}
	if got := eval[string](t, ctx, `document.getElementById('chart-caption').textContent`); !strings.HasPrefix(got, "Requests per day with the key you signed in with") {
		t.Errorf("the chart's caption = %q", got)
	}
	do(t, ctx, "copying the key ID by keyboard",
		browsertest.TabTo(`e.textContent === 'Copy key ID'`, 10),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="self-status" and text()="Copied the key ID."]`)),
	)
	if clip := eval[string](t, ctx, `navigator.clipboard.readText()`); clip != reader.ID {
		t.Errorf("the clipboard holds %q, want the key ID %s", clip, reader.ID)
	}

	do(t, ctx, "signing out by keyboard",
		browsertest.TabTo(`e.textContent === 'Sign out'`, 20),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible("", textbox("API key")),
	)
	signInByKeyboard(checker.Key)
	do(t, ctx, "waiting for the usage's answer", chromedp.WaitVisible(chromedp.CSS("#usage-error p")))
	if got, want := eval[string](t, ctx, `document.getElementById('usage-error').textContent`), "Seeing usage needs a key with the scope usage:read."; got != want {
		t.Errorf("the usage section says %q, want %q", got, want)
	}
	if details := eval[string](t, ctx, `document.getElementById('self-details').innerText`); !strings.Contains(details, checker.ID) {
		t.Errorf("the details %q lack the key ID", details)
	}
	wantNoOverflow(t, ctx, "a key without usage:read signed in")
	check()
}

// TestConsoleManagerSeesEachKey signs in as a manager at 375 px with the
// keyboard alone: each row shows the key's ID (copied with its button) and
// its last use; a chosen key's usage is charted; a revoked key is hidden
// until the switch shows it; a rotated key links to its replacement; the
// create form suggests this function's scopes.
func TestConsoleManagerSeesEachKey(t *testing.T) {
	base, env, admin := consoleServer(t, nil)
	tablet := createKey(t, env, "--name", "kitchen tablet", "--scopes", "bingo:check")
	seedUsage(t, env, tablet.ID, "grandma") // a month of it, flushed now: its last use is now
	laptop := createKey(t, env, "--name", "old laptop")
	apikey(t, env, "revoke", laptop.ID)
	hall := createKey(t, env, "--name", "bingo hall")
	var rotated createdKey
	if err := json.Unmarshal(apikey(t, env, "rotate", hall.ID, "--grace", "24h", "--json"), &rotated); err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t, 375, 740)
	check := watch(t, ctx)
	grantClipboard(t, ctx, base)
	do(t, ctx, "signing in by keyboard",
		chromedp.Navigate(base+"/console"),
		chromedp.WaitVisible("", textbox("API key")),
		chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`),
		browsertest.TabTo(`e.id === 'api-key'`, 10),
		chromedp.KeyEvent(admin.Key),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible("", browsertest.ByRole("heading", "Keys")),
		chromedp.WaitVisible(chromedp.CSS(`#chart [role="img"]`)),
	)
	wantNoOverflow(t, ctx, "a manager signed in")
	cell := func(id, column string) string {
		t.Helper()
		return eval[string](t, ctx, `(() => { const r = document.getElementById('key-`+id+`');
			const c = r && [...r.cells].find(c => c.dataset.label === '`+column+`'); return c ? c.innerText.trim() : 'no row'; })()`)
	}
	if got := cell(tablet.ID, "Key"); !strings.Contains(got, keyformat.Hint(tablet.Key)) || !strings.Contains(got, tablet.ID[:12]+"…") {
		t.Errorf("the tablet's Key cell = %q, want its hint and its ID's start", got)
	}
	if got := cell(tablet.ID, "Last used"); !strings.HasPrefix(got, time.Now().UTC().Format("2006-01-02")) {
		t.Errorf("the tablet's last use = %q, want today (the seeded flush)", got)
	}
	if got := cell(admin.ID, "Last used"); got != "never" {
		t.Errorf("the admin key's last use = %q, want never: nothing flushed yet", got)
	}

	// Copy a key's ID.
	do(t, ctx, "copying the tablet's ID by keyboard",
		browsertest.TabTo(`e.getAttribute('aria-label') === 'Copy ID of kitchen tablet'`, 40),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="keys-status" and text()="Copied the ID of kitchen tablet."]`)),
	)
	if clip := eval[string](t, ctx, `navigator.clipboard.readText()`); clip != tablet.ID {
		t.Errorf("the clipboard holds %q, want the tablet's ID", clip)
	}

	// The revoked laptop is hidden until the switch, by Space, shows it.
	if got := cell(laptop.ID, "Name"); got != "no row" {
		t.Errorf("the revoked key is shown: %q", got)
	}
	do(t, ctx, "showing revoked keys by keyboard",
		chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`),
		browsertest.TabTo(`e.id === 'show-revoked'`, 40),
		chromedp.KeyEvent(" "),
		chromedp.WaitVisible(chromedp.ID("key-"+laptop.ID)),
	)
	if n, err := chromedp.Run(ctx, browsertest.Count("switch", "Show revoked keys")); err != nil || n != 1 {
		t.Errorf("%d switches named Show revoked keys (%v), want 1", n, err)
	}
	if got := cell(laptop.ID, "Status"); got != "revoked" {
		t.Errorf("the laptop's status = %q, want revoked", got)
	}

	// The rotated hall key links to its replacement.
	link := "Replaced by " + keyformat.Hint(rotated.Key)
	do(t, ctx, "following the rotation by keyboard",
		browsertest.TabTo(`e.textContent === '`+link+`'`, 60),
		chromedp.KeyEvent(kb.Enter),
	)
	if got, want := eval[string](t, ctx, `document.activeElement.id`), "key-"+rotated.ID; got != want {
		t.Errorf("after Enter on %q the focus is on %q, want the replacement's row", link, got)
	}
	wantNoOverflow(t, ctx, "with revoked keys shown")

	// Chart the tablet's usage: the select, by keyboard.
	do(t, ctx, "choosing the tablet to chart by keyboard",
		browsertest.TabTo(`e.id === 'usage-key'`, 80),
	)
	for range 10 {
		if eval[string](t, ctx, `document.getElementById('usage-key').value`) == tablet.ID {
			break
		}
		do(t, ctx, "pressing Down", chromedp.KeyEvent(kb.ArrowDown))
	}
	do(t, ctx, "waiting for the tablet's chart",
		chromedp.WaitVisible(chromedp.Search(`//figcaption[@id="chart-caption" and starts-with(text(), "Requests per day with kitchen tablet")]`)))
	totals := eval[string](t, ctx, `document.getElementById('totals').innerText.replace(/\s+/g, ' ')`)
	if !strings.HasPrefix(totals, "kitchen tablet ("+keyformat.Hint(tablet.Key)+"), ") {
		t.Errorf("totals = %q, want the tablet's", totals)
	}
	label, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#chart [role="img"]`), "aria-label"))
	if err != nil || !strings.Contains(label.Value, "in all on 30 days") {
		t.Errorf("the tablet's chart %q (%v), want its 30 seeded days", label.Value, err)
	}
	if n, err := chromedp.Run(ctx, browsertest.Count("combobox", "Key to chart")); err != nil || n != 1 {
		t.Errorf("%d comboboxes named Key to chart (%v), want 1", n, err)
	}

	// The create form suggests the function's scopes.
	hint := eval[string](t, ctx, `document.getElementById('create-scopes-hint').textContent`)
	if !strings.Contains(hint, "this service's scopes are bingo:check, keys:manage, usage:read") {
		t.Errorf("the scopes hint = %q, want this function's scopes", hint)
	}
	wantNoOverflow(t, ctx, "with another key charted")
	check()
}
