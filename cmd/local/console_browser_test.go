package main

// The web console's browser tests: headless Chromium, driven with chromedp,
// against cmd/local on the Firestore emulator, finding every control by its
// role and accessible name (browsertest.ByRole), as a screen reader would.
// Without Chromium they skip loudly, or fail when KEYGATE_REQUIRE_BROWSER is
// set (.ci/run sets it and installs Chromium).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/browsertest"
	"github.com/keygate/keygate/internal/emulator"
)

// createdKey is what "apikey create --json" prints, in part.
type createdKey struct {
	ID, Key, Name string
}

// consoleServer starts cmd/local on a project of the test's own on the
// emulator, with the extra environment variables vars, and mints, with the
// CLI, a key of owner grandma named "console admin" that may manage keys,
// read usage and check bingo cards, with the extra CLI arguments create. It
// returns the base URL, the environment and the key.
func consoleServer(t *testing.T, vars []string, create ...string) (base string, env []string, admin createdKey) {
	t.Helper()
	browsertest.Require(t) // skip, or fail, before starting anything
	host, project := emulator.Project(t)
	// A cold emulator can take seconds over its first writes.
	env = cleanEnv(append([]string{"FIRESTORE_EMULATOR_HOST=" + host, "GOOGLE_CLOUD_PROJECT=" + project, "STORE_TIMEOUT=20s"}, vars...)...)
	args := append([]string{"create", "--owner", "grandma", "--name", "console admin", "--scopes", "keys:manage,usage:read,bingo:check", "--json"}, create...)
	if err := json.Unmarshal(apikey(t, env, args...), &admin); err != nil {
		t.Fatal(err)
	}
	port, _ := startLocal(t, env)
	return "http://127.0.0.1:" + port, env, admin
}

// watch records, for the whole test, the page's JavaScript dialogs (which
// it closes, so that the page does not hang) and its console messages; the
// returned check fails the test on any dialog, uncaught exception or
// Content-Security-Policy violation.
func watch(t *testing.T, ctx context.Context) (check func()) {
	var (
		dialogs  atomic.Int64
		mu       sync.Mutex
		problems []string
	)
	opened := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range opened {
			if err != nil {
				return
			}
			dialogs.Add(1)
			mu.Lock()
			problems = append(problems, "a JavaScript dialog opened: "+ev.Message)
			mu.Unlock()
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	return func() {
		t.Helper()
		time.Sleep(200 * time.Millisecond) // let late events arrive
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("in the browser: %s", p)
		}
	}
}

// do runs browser steps and fails the test at the first error, naming what
// it was doing.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// textOf returns the text of the first element with role and name.
func textOf(t *testing.T, ctx context.Context, role, name string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.TextContent("", browsertest.ByRole(role, name)))
	if err != nil {
		t.Fatalf("reading the %s %q: %v", role, name, err)
	}
	return s
}

var (
	button  = func(name string) chromedp.QueryOption { return browsertest.ByRole("button", name) }
	textbox = func(name string) chromedp.QueryOption { return browsertest.ByRole("textbox", name) }
)

// signIn opens the console and signs in with key, by mouse.
func signIn(t *testing.T, ctx context.Context, base, key string) {
	t.Helper()
	do(t, ctx, "signing in",
		chromedp.Navigate(base+"/console"),
		chromedp.SendKeys("", key, textbox("API key")),
		chromedp.Click("", button("Sign in")),
		chromedp.WaitVisible("", browsertest.ByRole("heading", "Keys")),
	)
}

// apiCall calls the function with key in header as an HTTP client would.
func apiCall(t *testing.T, header, method, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(header, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// bingoCard is a request whose card wins row 2 and column 2.
const bingoCard = `{"card":[[7,19,38,52,71],[3,24,41,49,66],[12,17,0,57,62],[1,28,33,60,74],[14,22,44,47,69]],"called":[12,57,17,62,38,41,33,44,5]}`

var keyPattern = regexp.MustCompile(`^kg_[0-9A-Za-z]{49}$`)

// TestConsoleManagesKeys is the key holder's whole flow in the browser:
// sign in with a keys:manage key, create a key and use it with an HTTP
// client, rotate it (its old key refused at once with no grace), revoke the
// new one and see it refused, and see the signed-in key's traffic in the
// chart, with nothing of the key left in storage, cookies or the URL.
func TestConsoleManagesKeys(t *testing.T) {
	base, _, admin := consoleServer(t, nil)
	ctx := browsertest.New(t, 1280, 900)
	check := watch(t, ctx)
	origin := base
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: origin,
		}); err != nil {
			t.Fatalf("granting %s: %v", name, err)
		}
	}

	// Traffic of the admin key for its chart: the console's own calls are
	// management, which is not counted.
	if code, body := apiCall(t, "X-API-Key", "GET", base+"/", admin.Key, ""); code != 200 {
		t.Fatalf("GET / with the admin key = %d %s", code, body)
	}
	signIn(t, ctx, base, admin.Key)
	if n := eval[int](t, ctx, `document.querySelectorAll('#keys-body tr').length`); n != 1 {
		t.Errorf("the table shows %d keys, want the one key of grandma", n)
	}
	do(t, ctx, "seeing the signed-in key's row", chromedp.WaitVisible("", button("Revoke console admin")))
	if got := eval[string](t, ctx, `document.getElementById('who').textContent`); got != "Owner: grandma" {
		t.Errorf("owner line = %q, want Owner: grandma", got)
	}
	leaks := eval[string](t, ctx, fmt.Sprintf(`[localStorage.length ? 'localStorage' : '', sessionStorage.length ? 'sessionStorage' : '',
		document.cookie ? 'cookie' : '', location.href.includes(%q) ? 'URL' : '', document.getElementById('api-key').value ? 'the field' : ''].filter(Boolean).join(', ')`, admin.Key))
	if leaks != "" {
		t.Errorf("the key is kept in: %s", leaks)
	}

	// Create, and use the new key.
	do(t, ctx, "creating a key",
		chromedp.Click("", button("Create key")),
		chromedp.SendKeys("", "tablet", textbox("Name")),
		chromedp.SendKeys("", "bingo:check", textbox("Scopes")),
		chromedp.Click("", button("Create")),
		chromedp.WaitVisible("", textbox("New key")),
	)
	newKey, err := chromedp.Run(ctx, chromedp.Value("", textbox("New key")))
	if err != nil || !keyPattern.MatchString(newKey) {
		t.Fatalf("the New key field holds %q (%v), want a key", newKey, err)
	}
	if ro := eval[bool](t, ctx, `document.getElementById('new-key-value').readOnly`); !ro {
		t.Error("the New key field is not read-only")
	}
	if w := textOf(t, ctx, "region", "Copy the new key now"); !strings.Contains(w, "will not be shown again") {
		t.Errorf("the new key's panel does not warn that it is shown once: %q", w)
	}
	do(t, ctx, "copying the key", chromedp.Click("", button("Copy")), chromedp.WaitVisible(chromedp.Search(`//p[@id="copy-status" and text()="Copied."]`)))
	if clip := eval[string](t, ctx, `navigator.clipboard.readText()`); clip != newKey {
		t.Errorf("the clipboard holds %q, want the new key", clip)
	}
	if code, body := apiCall(t, "X-API-Key", "POST", base+"/v1/bingo/check", newKey, bingoCard); code != 200 || !strings.HasPrefix(body, `{"bingo":true,`) {
		t.Errorf("the created key = %d %s, want 200 bingo", code, body)
	}
	if code, body := apiCall(t, "X-API-Key", "GET", base+"/v1/keys", newKey, ""); code != 403 || !strings.Contains(body, `"scope":"keys:manage"`) {
		t.Errorf("the created key on /v1/keys = %d %s, want 403: it has bingo:check only", code, body)
	}
	row := eval[string](t, ctx, `[...document.querySelectorAll('#keys-body tr')].map(r => r.innerText).find(s => s.includes('tablet')) || ''`)
	for _, want := range []string{"tablet", "bingo:check", "active", "never"} {
		if !strings.Contains(row, want) {
			t.Errorf("tablet's row %q lacks %q", row, want)
		}
	}
	do(t, ctx, "dismissing the new key", chromedp.Click("", button("Done")), chromedp.WaitNotVisible(chromedp.ID("new-key")))

	// Rotate with no grace: the old key is refused at once.
	do(t, ctx, "rotating tablet",
		chromedp.Click("", button("Rotate tablet")),
		chromedp.WaitVisible("", browsertest.ByRole("dialog", "Rotate tablet?")),
		chromedp.SetValue(chromedp.ID("grace"), "0s"),
		chromedp.Click("", button("Rotate")),
		chromedp.WaitNotVisible(chromedp.ID("confirm")),
		chromedp.WaitVisible("", textbox("New key")),
	)
	rotated, err := chromedp.Run(ctx, chromedp.Value("", textbox("New key")))
	if err != nil || !keyPattern.MatchString(rotated) || rotated == newKey {
		t.Fatalf("after rotating, the New key field holds %q (%v), want another key", rotated, err)
	}
	if code, body := apiCall(t, "X-API-Key", "POST", base+"/v1/bingo/check", newKey, bingoCard); code != 401 {
		t.Errorf("the rotated-out key = %d %s, want 401", code, body)
	}
	if code, body := apiCall(t, "X-API-Key", "POST", base+"/v1/bingo/check", rotated, bingoCard); code != 200 {
		t.Errorf("the rotated key = %d %s, want 200", code, body)
	}
	if n := eval[int](t, ctx, `[...document.querySelectorAll('#keys-body tr')].filter(r => r.innerText.includes('tablet')).length`); n != 2 {
		t.Errorf("%d rows named tablet after the rotation, want 2 (the expired one and its replacement)", n)
	}
	do(t, ctx, "dismissing the rotated key", chromedp.Click("", button("Done")))

	// Revoke, after a cancelled first try.
	do(t, ctx, "cancelling a revocation",
		chromedp.Click("", button("Revoke tablet")),
		chromedp.WaitVisible("", browsertest.ByRole("dialog", "Revoke tablet?")),
		chromedp.Click("", button("Cancel")),
		chromedp.WaitNotVisible(chromedp.ID("confirm")),
	)
	if code, _ := apiCall(t, "X-API-Key", "POST", base+"/v1/bingo/check", rotated, bingoCard); code != 200 {
		t.Errorf("after a cancelled revocation the key = %d, want 200", code)
	}
	do(t, ctx, "revoking tablet",
		chromedp.Click("", button("Revoke tablet")),
		chromedp.WaitVisible("", browsertest.ByRole("dialog", "Revoke tablet?")),
		chromedp.Click("", button("Revoke")),
		chromedp.WaitNotVisible(chromedp.ID("confirm")),
		chromedp.WaitNotPresent("", button("Revoke tablet")),
	)
	if code, body := apiCall(t, "X-API-Key", "POST", base+"/v1/bingo/check", rotated, bingoCard); code != 401 || !strings.Contains(body, `"code":"invalid_api_key"`) {
		t.Errorf("the revoked key = %d %s, want 401 invalid_api_key", code, body)
	}
	// Revoked keys are hidden until the switch shows them; the rotated-out
	// key links to its replacement.
	statuses := func() string {
		return eval[string](t, ctx, `[...document.querySelectorAll('#keys-body tr')].map(r => r.querySelector('.status').innerText.trim()).join(' ')`)
	}
	if got := statuses(); got != "expired active" {
		t.Errorf("statuses, newest first = %q, want expired active: the revoked key hidden", got)
	}
	if note := eval[string](t, ctx, `document.getElementById('revoked-note').textContent`); note != "1 revoked key hidden on this page." {
		t.Errorf("the note on hidden keys = %q", note)
	}
	do(t, ctx, "showing revoked keys", chromedp.Click("", browsertest.ByRole("switch", "Show revoked keys")),
		chromedp.WaitVisible("", browsertest.ByRole("link", "Replaced by "+keyformat.Hint(rotated))))
	if got := statuses(); got != "revoked expired active" {
		t.Errorf("statuses with revoked keys shown = %q, want revoked expired active", got)
	}
	do(t, ctx, "following the link to the replacement", chromedp.Click("", browsertest.ByRole("link", "Replaced by "+keyformat.Hint(rotated))))
	if got, want := eval[string](t, ctx, `document.activeElement.id`), "key-"+keyformat.ID(rotated); got != want {
		t.Errorf("after following the link the focus is on %q, want the replacement's row %s", got, want)
	}
	if href := eval[string](t, ctx, `location.href`); href != base+"/console" {
		t.Errorf("the address after following the link = %q, want the page's, unchanged", href)
	}

	// The chart: the signed-in key's own requests (the GET / above), today.
	label, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#chart [role="img"]`), "aria-label"))
	if err != nil || !label.Exists {
		t.Fatalf("no chart: %v", err)
	}
	m := regexp.MustCompile(`^Requests per day, (\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d): [1-9][\d,]* in all on [12] days?, most [1-9]`).FindStringSubmatch(label.Value)
	if m == nil {
		t.Fatalf("the chart's label %q does not show a day of traffic", label.Value)
	}
	if n, err := chromedp.Run(ctx, browsertest.Count("image", label.Value)); err != nil || n != 1 {
		t.Errorf("%d elements with role img named %q (%v), want the chart", n, label.Value, err)
	}
	today := m[2] // the page's today, UTC
	cells := eval[[]string](t, ctx, `[...document.querySelectorAll('#usage-rows tr')].map(r => r.innerText.replace(/\s+/g, ' ').trim())`)
	if len(cells) != 30 || !strings.HasPrefix(cells[29], today+" ") || cells[29] == today+" 0" {
		t.Errorf("the usage table = %q, want 30 days ending with today's requests", cells)
	}
	if bars := eval[int](t, ctx, `document.querySelectorAll('#chart rect.bar').length`); bars != 30 {
		t.Errorf("%d bars, want 30", bars)
	}
	totals := eval[string](t, ctx, `document.getElementById('totals').innerText.replace(/\s+/g, ' ')`)
	if !regexp.MustCompile(`^This key, \d{4}-\d\d \(UTC\) [1-9][\d,]* requests; no monthly quota All keys of grandma, \d{4}-\d\d [1-9][\d,]* requests; no monthly quota$`).MatchString(totals) {
		t.Errorf("month totals = %q, want this key's and its owner's, without quotas", totals)
	}

	// Signing out forgets the key.
	do(t, ctx, "signing out", chromedp.Click("", button("Sign out")), chromedp.WaitVisible("", textbox("API key")))
	if hidden := eval[bool](t, ctx, `document.getElementById('app').hidden && document.getElementById('keys-body').rows.length === 0`); !hidden {
		t.Error("after signing out the keys are still shown")
	}
	check()
}

// TestConsoleShowsTheProblem signs in with a wrong key, a revoked key and
// not a key, and sees each time the API's own problem detail.
func TestConsoleShowsTheProblem(t *testing.T) {
	base, env, _ := consoleServer(t, nil)
	var revoked createdKey
	if err := json.Unmarshal(apikey(t, env, "create", "--owner", "grandma", "--name", "old", "--json"), &revoked); err != nil {
		t.Fatal(err)
	}
	apikey(t, env, "revoke", revoked.ID)
	ctx := browsertest.New(t, 1280, 900)
	check := watch(t, ctx)
	wrong, err := keyformat.New("kg") // well formed, never stored
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, key, code string }{
		{"wrong key", wrong, "invalid_api_key"},
		{"revoked key", revoked.Key, "invalid_api_key"},
		{"not a key", "hello", "invalid_api_key"},
	} {
		code, body := apiCall(t, "X-API-Key", "GET", base+"/v1/keys?limit=20", c.key, "")
		var p struct{ Code, Detail string }
		if err := json.Unmarshal([]byte(body), &p); err != nil || p.Code != c.code || p.Detail == "" || code/100 != 4 {
			t.Fatalf("%s: the API answers %d %s, want a %s problem", c.name, code, body, c.code)
		}
		do(t, ctx, c.name,
			chromedp.Navigate(base+"/console"),
			chromedp.SendKeys("", c.key, textbox("API key")),
			chromedp.Click("", button("Sign in")),
			chromedp.WaitVisible(chromedp.CSS("#sign-in-error p")),
		)
		if got := eval[string](t, ctx, `document.getElementById('sign-in-error').textContent`); got != p.Detail {
			t.Errorf("%s: the page says %q, want the API's detail %q", c.name, got, p.Detail)
		}
		if role := eval[string](t, ctx, `document.getElementById('sign-in-error').getAttribute('role')`); role != "alert" {
			t.Errorf("%s: the error's role is %q, want alert, so that it is announced", c.name, role)
		}
		if visible := eval[bool](t, ctx, `!document.getElementById('app').hidden`); visible {
			t.Errorf("%s: the console opened", c.name)
		}
	}
	check()
}

// TestConsoleShowsNamesAsText creates a key named like markup: the table,
// the buttons and the confirmation show the name as text, no element is
// made of it, and no script runs.
func TestConsoleShowsNamesAsText(t *testing.T) {
	const name = `<img src=x onerror=alert(1)>`
	base, _, admin := consoleServer(t, nil)
	ctx := browsertest.New(t, 1280, 900)
	check := watch(t, ctx)
	signIn(t, ctx, base, admin.Key)
	do(t, ctx, "creating a key named like markup",
		chromedp.Click("", button("Create key")),
		chromedp.SendKeys("", name, textbox("Name")),
		chromedp.Click("", button("Create")),
		chromedp.WaitVisible("", textbox("New key")),
		chromedp.WaitVisible("", button("Revoke "+name)),
		chromedp.WaitVisible("", button("Rotate "+name)),
	)
	if n := eval[int](t, ctx, `document.querySelectorAll('img').length`); n != 0 {
		t.Errorf("%d img elements on the page, want none", n)
	}
	if cell := eval[string](t, ctx, `document.querySelector('#keys-body tr td').textContent`); cell != name {
		t.Errorf("the newest key's name cell = %q, want %q as text", cell, name)
	}
	if about := textOf(t, ctx, "region", "Copy the new key now"); !strings.Contains(about, "Created "+name) {
		t.Errorf("the new key's panel = %q, want the name as text", about)
	}
	do(t, ctx, "opening the confirmation",
		chromedp.Click("", button("Revoke "+name)),
		chromedp.WaitVisible("", browsertest.ByRole("dialog", "Revoke "+name+"?")),
	)
	if n := eval[int](t, ctx, `document.querySelectorAll('img').length`); n != 0 {
		t.Errorf("%d img elements with the confirmation open, want none", n)
	}
	do(t, ctx, "closing it with Escape", browsertest.Press(kb.Escape, 1), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	check() // no dialog: alert(1) never ran
}

// TestConsoleNarrowAndKeyboard uses the console on a 375 px wide screen
// with the keyboard alone: Tab to the key field, type, Enter; Tab to
// "Create key", Space; type a name, Tab to "Create", Enter; then revoke it
// with Enter. Nothing overflows sideways, and every button is on screen.
// The function reads keys from a header of its own here, which the page
// learns from the function.
func TestConsoleNarrowAndKeyboard(t *testing.T) {
	const header = "X-Bingo-Key"
	base, _, admin := consoleServer(t, []string{"API_KEY_HEADER=" + header})
	ctx := browsertest.New(t, 375, 740)
	check := watch(t, ctx)
	do(t, ctx, "opening the console", chromedp.Navigate(base+"/console"), chromedp.WaitVisible("", textbox("API key")))
	if w := eval[int](t, ctx, `window.innerWidth`); w != 375 {
		t.Fatalf("the window is %d px wide, want 375", w)
	}
	noOverflow := func(when string) { t.Helper(); wantNoOverflow(t, ctx, when) }
	noOverflow("signed out")

	// Sign in by keyboard, from the top of the page.
	do(t, ctx, "signing in by keyboard",
		chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`),
		browsertest.TabTo(`e.id === 'api-key'`, 10),
		chromedp.KeyEvent(admin.Key),
		browsertest.TabTo(`e.textContent === 'Sign in'`, 3),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible("", browsertest.ByRole("heading", "Keys")),
		chromedp.WaitVisible("", button("Revoke console admin")),
		chromedp.WaitVisible(chromedp.CSS(`#chart [role="img"]`)),
	)
	noOverflow("signed in")

	// Create by keyboard.
	do(t, ctx, "creating a key by keyboard",
		browsertest.TabTo(`e.textContent === 'Create key'`, 5),
		chromedp.KeyEvent(" "),
		chromedp.WaitVisible("", textbox("Name")),
	)
	if id := eval[string](t, ctx, `document.activeElement.id`); id != "create-name" {
		t.Errorf("after opening the form the focus is on %q, want the Name field", id)
	}
	do(t, ctx, "typing and submitting",
		chromedp.KeyEvent("phone"),
		browsertest.TabTo(`e.textContent === 'Create'`, 5),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible("", textbox("New key")),
		chromedp.WaitVisible("", button("Revoke phone")),
	)
	if id := eval[string](t, ctx, `document.activeElement.id`); id != "new-key-value" {
		t.Errorf("after creating, the focus is on %q, want the New key field", id)
	}
	created := eval[string](t, ctx, `document.activeElement.value`)
	if code, _ := apiCall(t, header, "GET", base+"/", created, ""); code != 200 || !keyPattern.MatchString(created) {
		t.Errorf("the key created by keyboard %q = %d, want 200", created, code)
	}
	if code, _ := apiCall(t, "X-API-Key", "GET", base+"/", created, ""); code != 401 {
		t.Errorf("the key in X-API-Key = %d, want 401: this function reads %s", code, header)
	}
	noOverflow("with the new key shown")

	// Revoke by keyboard: Enter on the row's button, Shift+Tab from Cancel
	// to Revoke, Enter.
	do(t, ctx, "revoking by keyboard",
		browsertest.TabTo(`e.getAttribute('aria-label') === 'Revoke phone'`, 20),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible("", browsertest.ByRole("dialog", "Revoke phone?")),
	)
	noOverflow("with the confirmation open")
	do(t, ctx, "confirming by keyboard",
		browsertest.Press(kb.Tab, 1, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitNotVisible(chromedp.ID("confirm")),
		chromedp.WaitNotPresent("", button("Revoke phone")),
	)
	if code, _ := apiCall(t, header, "GET", base+"/", created, ""); code != 401 {
		t.Errorf("the key revoked by keyboard = %d, want 401", code)
	}
	check()
}

// wantNoOverflow fails the test if the page is wider than the window, or a
// visible button is smaller than 24 px or off screen: checked at 375 px.
func wantNoOverflow(t *testing.T, ctx context.Context, when string) {
	t.Helper()
	if o := eval[string](t, ctx, `(() => {
		const w = document.documentElement.clientWidth;
		if (document.documentElement.scrollWidth > w) {
			const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 0.5)
				.map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className : '') + ' to ' + Math.round(e.getBoundingClientRect().right));
			return 'the page is ' + document.documentElement.scrollWidth + ' px wide: ' + wide.slice(0, 8).join(', ');
		}
		for (const b of document.querySelectorAll('button')) {
			if (!b.checkVisibility()) continue;
			const r = b.getBoundingClientRect();
			if (r.width < 24 || r.height < 24 || r.left < 0 || r.right > w) return 'button ' + (b.getAttribute('aria-label') || b.textContent) + ' at ' + r.left + '..' + r.right;
		}
		return '';
	})()`); o != "" {
		t.Errorf("%s: %s", when, o)
	}
}

// TestConsolePages lists 26 keys, 20 a page: Next page follows the API's
// next_page_token, Previous page comes back.
func TestConsolePages(t *testing.T) {
	base, env, admin := consoleServer(t, nil)
	s := firestorestore.New(firestorestore.Config{Project: envValue(env, "GOOGLE_CLOUD_PROJECT")})
	defer s.Close()
	start := time.Now()
	for i := 1; i <= 25; i++ {
		_, k, err := keyrules.Mint("kg", store.Key{Owner: "grandma", Name: fmt.Sprintf("key %02d", i), CreatedAt: start.Add(time.Duration(i) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Create(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	ctx := browsertest.New(t, 1280, 900)
	check := watch(t, ctx)
	names := func() []string {
		t.Helper()
		return eval[[]string](t, ctx, `[...document.querySelectorAll('#keys-body tr')].map(r => r.cells[0].innerText.trim())`)
	}
	signIn(t, ctx, base, admin.Key)
	first := names()
	if len(first) != 20 || first[0] != "key 25" || first[19] != "key 06" {
		t.Fatalf("page 1 = %q, want key 25 to key 06", first)
	}
	if d := eval[bool](t, ctx, `document.getElementById('prev-page').disabled`); !d {
		t.Error("Previous page is enabled on page 1")
	}
	// The signed-in key is marked once the usage has come back, which may be
	// after page 2 is shown.
	do(t, ctx, "going to page 2", chromedp.Click("", button("Next page")), chromedp.WaitVisible("", button("Revoke console admin")),
		chromedp.WaitVisible(chromedp.CSS(".this-key-mark")))
	second := names()
	if len(second) != 6 || second[0] != "key 05" || second[5] != "console admin (this key)" {
		t.Errorf("page 2 = %q, want key 05 to key 01, then console admin", second)
	}
	if got := eval[string](t, ctx, `document.getElementById('page-label').textContent + ' ' + document.getElementById('next-page').disabled`); got != "Page 2 true" {
		t.Errorf("on the last page: %q, want Page 2 and Next page disabled", got)
	}
	do(t, ctx, "going back", chromedp.Click("", button("Previous page")), chromedp.WaitVisible("", button("Revoke key 25")))
	if again := names(); len(again) != 20 || again[0] != "key 25" {
		t.Errorf("page 1 again = %q", again)
	}
	check()
}

// envValue is the value of name in env.
func envValue(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if s, ok := strings.CutPrefix(kv, name+"="); ok {
			v = s
		}
	}
	return v
}

var updateScreenshots = flag.Bool("update-screenshots", false, "rewrite the console's screenshots in docs/")

// The screenshots in docs/ that the README shows: a manager's keys and
// usage, and the page of a key that cannot manage keys.
var screenshots = map[string]string{
	"#keys":  "../../docs/console-keys.png",
	"#usage": "../../docs/console-usage.png",
}

const holderScreenshot = "../../docs/console-holder.png"

// TestConsoleScreenshots takes docs/api.md's screenshots of the signed-in
// console: a few keys (one revoked, one rotated), a month of traffic seeded
// in the store, and a key holder's own page. With -update-screenshots it
// writes them to docs/; without, it checks that the committed ones are
// there and are PNG images.
func TestConsoleScreenshots(t *testing.T) {
	base, env, admin := consoleServer(t, nil, "--quota", "50000")
	apikey(t, env, "create", "--owner", "grandma", "--name", "bingo hall display", "--scopes", "bingo:check", "--rate", "5", "--burst", "10")
	tablet := createKey(t, env, "--name", "kitchen tablet", "--expires", "720h")
	apikey(t, env, "rotate", tablet.ID, "--grace", "168h")
	old := createKey(t, env, "--name", "old laptop")
	apikey(t, env, "revoke", old.ID)
	reader := createKey(t, env, "--name", "grandma's phone", "--scopes", "bingo:check,usage:read", "--quota", "20000")
	apikey(t, env, "plan", "set", "grandma", "--quota", "200000")
	seedUsage(t, env, admin.ID, "grandma")
	seedUsage(t, env, reader.ID, "grandma")

	ctx := browsertest.New(t, 1100, 900)
	signIn(t, ctx, base, admin.Key)
	do(t, ctx, "waiting for the chart", chromedp.WaitVisible(chromedp.CSS(`#chart [role="img"]`)),
		chromedp.Click("", browsertest.ByRole("switch", "Show revoked keys")))
	shots := map[string][]byte{}
	for sel, path := range screenshots {
		shots[path] = screenshot(t, ctx, sel)
	}
	do(t, ctx, "signing in as a key holder",
		chromedp.Click("", button("Sign out")),
		chromedp.SendKeys("", reader.Key, textbox("API key")),
		chromedp.Click("", button("Sign in")),
		chromedp.WaitVisible("", browsertest.ByRole("heading", "Your key")),
		chromedp.WaitVisible(chromedp.CSS(`#chart [role="img"]`)),
	)
	shots[holderScreenshot] = screenshot(t, ctx, "#app")
	for path, shot := range shots {
		if *updateScreenshots {
			if err := os.WriteFile(path, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d bytes)", filepath.Clean(path), len(shot))
			continue
		}
		committed, err := os.ReadFile(path)
		if err != nil || !isPNG(committed) {
			t.Errorf("%s: %v; run go test ./cmd/local -run TestConsoleScreenshots -update-screenshots", path, err)
		}
	}
}

// screenshot is a PNG image of the element sel.
func screenshot(t *testing.T, ctx context.Context, sel string) []byte {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", sel, err)
	}
	if !isPNG(shot) {
		t.Fatalf("the screenshot of %s is not a PNG image", sel)
	}
	return shot
}

// seedUsage writes a month of made-up traffic for the key and its owner
// straight into the test's project on the emulator, as the meter would
// have: the chart's screenshot needs more than today.
func seedUsage(t *testing.T, env []string, keyID, owner string) {
	t.Helper()
	s := firestorestore.New(firestorestore.Config{Project: envValue(env, "GOOGLE_CLOUD_PROJECT")})
	defer s.Close()
	var counts []store.UsageCount
	now := time.Now().UTC()
	for i := 29; i >= 0; i-- {
		day := now.AddDate(0, 0, -i)
		n := int64(900 + 40*(29-i) + 350*(i%7%3))
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			n = n * 2 / 5
		}
		if i == 0 {
			n = n * int64(now.Hour()+1) / 24 // today so far
		}
		counts = append(counts, store.UsageCount{KeyID: keyID, Owner: owner, Day: store.DayOf(day), Requests: n})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.AddUsage(ctx, "screenshot-seed-"+keyID, 1, counts); err != nil { // an instance a key: each batch applies
		t.Fatal(err)
	}
}

func isPNG(b []byte) bool { return len(b) > 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n" }
