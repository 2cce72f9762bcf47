// Package browsertest drives headless Chromium from Go tests with chromedp,
// for the browser tests of the web console and the API reference: it finds
// and starts the browser with the flags this closed network needs, finds
// elements the way a screen reader does, by role and accessible name, and
// watches a page for errors and Content-Security-Policy violations.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keygate/keygate/internal/testrun"
)

// RequireEnv is the environment variable that turns a missing browser from
// a skip into a failure; .ci/run sets it.
const RequireEnv = "KEYGATE_REQUIRE_BROWSER"

// PathEnv names the browser to use instead of the first of candidates on
// the PATH.
const PathEnv = "KEYGATE_CHROMIUM"

// candidates are the browsers looked for on the PATH, Debian's first.
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"}

// Path returns the browser to run, or "" and why there is none.
func Path() (path, reason string) {
	if p := os.Getenv(PathEnv); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Sprintf("%s=%s: %v", PathEnv, p, err)
		}
		return p, ""
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p, ""
		}
	}
	return "", "none of " + strings.Join(candidates, ", ") + " is on the PATH (Debian: apt-get install chromium)"
}

// Timeout bounds each test's whole use of its browser, so that a page that
// never shows what a test waits for fails the test instead of hanging it.
const Timeout = 90 * time.Second

// New starts a headless Chromium of the test's own (a fresh profile, closed
// when the test ends) with a window of width × height CSS pixels, and
// returns the context of its tab, bounded by Timeout. Without a browser the
// test skips with a loud message, or fails when RequireEnv is set.
func New(t testing.TB, width, height int) context.Context {
	t.Helper()
	path := Require(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // root in containers and CI has no user namespace sandbox
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Without these Chromium reaches for Google's servers at start,
		// and on a closed network it waits for them.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-pings", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	// Start the browser with no deadline: the first Run binds its life to
	// the context it is given.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("starting %s: %v", path, err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, Timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// Require returns the browser's path for a test that needs one. Without a
// browser the test skips with a loud message, or fails when RequireEnv is
// set. Call it first, to skip before any costly set-up.
func Require(t testing.TB) string {
	t.Helper()
	path, reason := Path()
	if path == "" {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("a browser is required (%s is set) but not available: %s", RequireEnv, reason)
		}
		testrun.Skip(t, testrun.Chromium, reason+"; set "+RequireEnv+"=1 to make this a failure")
	}
	testrun.Used(t, testrun.Chromium)
	return path
}

// ByRole is a query option that selects the elements whose computed role
// and accessible name are role and name, as assistive technology sees
// them, leaving out those hidden from it (or inert behind a modal dialog).
// Use it with any query action and an empty selector:
// chromedp.Click("", ByRole("button", "Sign in")). The roles are
// Chromium's: "button", "textbox", "heading", "dialog", "region", and
// "image" for role="img". The name must match whole.
func ByRole(role, name string) chromedp.QueryOption {
	return chromedp.ByFunc(func(ctx context.Context, t *chromedp.Target, n *chromedp.Node) ([]cdp.NodeID, error) {
		return queryAX(ctx, t, n.NodeID, role, name)
	})
}

// queryAX finds the nodes under root with role and name that are not
// ignored for accessibility, as DOM node IDs.
func queryAX(ctx context.Context, t *chromedp.Target, root cdp.NodeID, role, name string) ([]cdp.NodeID, error) {
	res, err := cdp.Call(ctx, t, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{NodeID: root, Role: role, AccessibleName: name})
	if err != nil {
		return nil, err
	}
	var backend []cdp.BackendNodeID
	for _, n := range res.Nodes {
		if !n.Ignored && n.BackendDOMNodeID != 0 {
			backend = append(backend, n.BackendDOMNodeID)
		}
	}
	if len(backend) == 0 {
		return nil, nil
	}
	pushed, err := cdp.Call(ctx, t, dom.PushNodesByBackendIDsToFrontend, dom.PushNodesByBackendIDsToFrontendParams{BackendNodeIDs: backend})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(pushed.NodeIDs, func(id cdp.NodeID) bool { return id == 0 }), nil
}

// Count returns how many elements have role and name, as ByRole finds them,
// without waiting for any.
func Count(role, name string) chromedp.Action[int] {
	return func(ctx context.Context, t *chromedp.Target) (int, error) {
		// The root element as chromedp knows it: DOM.getDocument would
		// renumber the nodes under chromedp's feet.
		html, err := chromedp.Nodes(chromedp.CSS("html"))(ctx, t)
		if err != nil {
			return 0, err
		}
		ids, err := queryAX(ctx, t, html[0].NodeID, role, name)
		return len(ids), err
	}
}

// Press sends key (such as kb.Tab, kb.Enter or " ") to the focused
// element, n times.
func Press(key string, n int, opts ...chromedp.KeyOption) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for range n {
			if _, err := chromedp.KeyEvent(key, opts...)(ctx, t); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	}
}

// TabTo presses Tab until the focused element satisfies the JavaScript
// predicate focused (an expression over the variable e, the focused
// element), at most max times, and fails otherwise: a keyboard user's way
// to reach a control.
func TabTo(focused string, max int) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		check := chromedp.Evaluate[bool]("((e) => !!e && (" + focused + "))(document.activeElement)")
		for range max {
			if _, err := chromedp.KeyEvent(kb.Tab)(ctx, t); err != nil {
				return chromedp.Void{}, err
			}
			ok, err := check(ctx, t)
			if err != nil {
				return chromedp.Void{}, err
			}
			if ok {
				return chromedp.Void{}, nil
			}
		}
		return chromedp.Void{}, fmt.Errorf("no focus on %s after %d presses of Tab", focused, max)
	}
}

// violationsScript records, in every document the tab loads, the
// Content-Security-Policy violations the page reports (the
// securitypolicyviolation event), for Watch.
const violationsScript = `window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(
  e.effectiveDirective + ' blocked ' + (e.blockedURI || '(inline)') + ' at ' + e.sourceFile + ':' + e.lineNumber));`

// Watch starts recording, for a tab before it loads its page, the page's
// uncaught exceptions, console errors (a failed load among them) and
// Content-Security-Policy violations, and closes any JavaScript dialog
// (so that the page does not hang); the returned check fails the test on
// any of them, or on a dialog, in the page loaded now. A page that is
// meant to log errors needs a watch of its own.
func Watch(t testing.TB, ctx context.Context) (check func()) {
	t.Helper()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: violationsScript}); err != nil {
		t.Fatalf("watching for CSP violations: %v", err)
	}
	var (
		mu       sync.Mutex
		problems []string
	)
	add := func(s string) {
		mu.Lock()
		problems = append(problems, s)
		mu.Unlock()
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			add("a JavaScript dialog opened: " + ev.Message)
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError || strings.Contains(m.Text, "Content Security Policy") {
				add(m.String())
			}
		}
	}()
	return func() {
		t.Helper()
		violations, err := chromedp.Run(ctx, chromedp.Evaluate[[]string]("window.__cspViolations || ['the page has no record of its violations']"))
		if err != nil {
			t.Errorf("reading the page's CSP violations: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // let late events arrive
		mu.Lock()
		defer mu.Unlock()
		for _, v := range violations {
			t.Errorf("CSP violation in the browser: %s", v)
		}
		for _, p := range problems {
			t.Errorf("in the browser: %s", p)
		}
	}
}
