package keygate

// The API reference's browser test: headless Chromium, driven with
// chromedp, against the function's Handler on a memory store. Without
// Chromium it skips loudly, or fails when KEYGATE_REQUIRE_BROWSER is set.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/internal/browsertest"
	"github.com/keygate/keygate/internal/testkit"
)

// TestDocsTryARequest opens /docs under its Content-Security-Policy, finds
// every operation of the document on the page, authorizes with a key,
// tries GET / from the page and sees its 200 and its body there; the
// function saw the request with the key in its header. Nothing of the key
// is left in storage, cookies or the address, and the page logged no
// error and broke no rule of its policy.
func TestDocsTryARequest(t *testing.T) {
	browsertest.Require(t)
	h, s := newRoutes(t, nil)
	key, _ := testkit.MintKey(t, s, "acme")
	var (
		mu   sync.Mutex
		seen []string // method, path and whether the key came in its header
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" key="+map[bool]string{true: "yes", false: "no"}[r.Header.Get("X-API-Key") == key])
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	// The policy is in the page's header.
	resp, err := http.Get(srv.URL + DocsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Fatalf("GET /docs = %d, Content-Security-Policy %q", resp.StatusCode, csp)
	}
	resp, err = http.Get(srv.URL + OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if slices.Contains([]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}, method) {
				want = append(want, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(want)
	if len(want) < 10 {
		t.Fatalf("the document has %d operations: %q", len(want), want)
	}

	ctx := browsertest.New(t, 1280, 900)
	check := browsertest.Watch(t, ctx)
	hello := `.opblock-get:has(.opblock-summary-path[data-path="/"])`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+DocsPath),
		chromedp.WaitVisible(hello),
	); err != nil {
		t.Fatalf("opening /docs: %v", err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('.opblock')].map((op) =>
		op.querySelector('.opblock-summary-method').textContent + ' ' + op.querySelector('.opblock-summary-path').dataset.path).sort()`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shown, want) {
		t.Errorf("the page shows the operations %q, want the document's %q", shown, want)
	}

	if err := chromedp.Do(ctx,
		chromedp.Click("", browsertest.ByRole("button", "Authorize")),
		chromedp.SendKeys(".auth-container input", key),
	); err != nil {
		t.Fatalf("typing the key: %v", err)
	}
	// Hidden as it is typed, and not remembered by the browser's autofill.
	if field := eval[string](t, ctx, `(({type, autocomplete}) => type + ' ' + autocomplete)(document.querySelector('.auth-container input'))`); field != "password off" {
		t.Errorf("the key's field is %q, want type password, autocomplete off", field)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click("", browsertest.ByRole("button", "Apply credentials")),
		chromedp.Click("", browsertest.ByRole("button", "Close")),
		chromedp.Click(hello+" .opblock-summary-control"),
		chromedp.Click("", browsertest.ByRole("button", "Try it out")),
		chromedp.Click("", browsertest.ByRole("button", "Execute")),
		chromedp.WaitVisible(hello+" .live-responses-table .response .response-col_status"),
	); err != nil {
		t.Fatalf("trying GET / with the key: %v", err)
	}
	status, err := chromedp.Run(ctx, chromedp.TextContent(hello+" .live-responses-table .response .response-col_status"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.TextContent(hello+" .live-responses-table .response .response-col_description"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(status) != "200" || !strings.Contains(body, `"message": "Hello World"`) {
		t.Errorf("the page shows %q %q, want 200 and Hello World", status, body)
	}
	mu.Lock()
	if !slices.Contains(seen, "GET / key=yes") {
		t.Errorf("the function never saw GET / with the key; it saw %q", seen)
	}
	mu.Unlock()

	// The key lives in the tab's memory only.
	left := eval[string](t, ctx, `JSON.stringify([localStorage.length, sessionStorage.length, document.cookie, location.href])`)
	if wantLeft := `[0,0,"","` + srv.URL + DocsPath + `"]`; left != wantLeft {
		t.Errorf("storage, cookies and address = %s, want %s", left, wantLeft)
	}
	check()

	// The policy is in force in the page: an inline script and an inline
	// style are refused (which breaks it, so after the check).
	probe := `(() => {
		const script = document.createElement('script');
		script.textContent = 'window.inlineRan = true;';
		document.body.append(script);
		const style = document.createElement('style');
		style.textContent = 'body { --inline-style: applied; }';
		document.head.append(style);
		return [!!window.inlineRan, getComputedStyle(document.body).getPropertyValue('--inline-style').trim()].join(' ');
	})()`
	if got := eval[string](t, ctx, probe); got != "false " {
		t.Errorf("inline script ran, inline style: %q; want both refused by the policy", got)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}
