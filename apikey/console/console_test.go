package console

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/testkit"
	"golang.org/x/net/html"
)

// get serves one request to h.
func get(h http.Handler, method, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

// wantStrictHeaders checks the headers every console response carries.
func wantStrictHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestHandlerServesThePageAndItsFiles(t *testing.T) {
	h := Handler(Config{Path: "/admin/console/", KeysPath: "/api/keys", UsagePath: "/api/usage", Header: "X-Bingo-Key"})
	cases := []struct{ path, typ, contains string }{
		{"/admin/console", "text/html; charset=utf-8", `<label for="api-key">API key</label>`},
		{"/admin/console/console.js", "text/javascript; charset=utf-8", "'use strict';"},
		{"/admin/console/console.css", "text/css; charset=utf-8", ":root"},
		{"/admin/console/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, c := range cases {
		w := get(h, "GET", c.path)
		if w.Code != 200 || w.Header().Get("Content-Type") != c.typ || !strings.Contains(w.Body.String(), c.contains) {
			t.Errorf("GET %s = %d %q, want 200 %s containing %q", c.path, w.Code, w.Header().Get("Content-Type"), c.typ, c.contains)
		}
		if w.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: Cache-Control = %q, want no-cache", c.path, w.Header().Get("Cache-Control"))
		}
		wantStrictHeaders(t, w)
		head := get(h, "HEAD", c.path)
		if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Length") != w.Header().Get("Content-Length") {
			t.Errorf("HEAD %s = %d, %d bytes, Content-Length %q; want 200, no body, %q", c.path, head.Code, head.Body.Len(),
				head.Header().Get("Content-Length"), w.Header().Get("Content-Length"))
		}
	}
	page := get(h, "GET", "/admin/console").Body.String()
	for _, want := range []string{
		`data-keys-path="/api/keys"`, `data-usage-path="/api/usage"`, `data-key-header="X-Bingo-Key"`,
		`src="/admin/console/console.js"`, `href="/admin/console/console.css"`, `href="/admin/console/favicon.svg"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

func TestHandlerDefaults(t *testing.T) {
	page := get(Handler(Config{}), "GET", "/console").Body.String()
	for _, want := range []string{`data-keys-path="/v1/keys"`, `data-usage-path="/v1/usage"`, `data-key-header="X-API-Key"`, `src="/console/console.js"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the default page lacks %s", want)
		}
	}
}

func TestHandlerRedirectsAndRefusesOtherPathsAndMethods(t *testing.T) {
	h := Handler(Config{})
	if w := get(h, "GET", "/console/"); w.Code != 301 || w.Header().Get("Location") != "/console" {
		t.Errorf("GET /console/ = %d Location %q, want 301 to /console", w.Code, w.Header().Get("Location"))
	}
	for _, path := range []string{"/console//", "/console/nope.js", "/console/static/console.js", "/console/console.html", "/consolex", "/"} {
		w := get(h, "GET", path)
		if w.Code != 404 || testkit.Problem(t, w).Code != "not_found" {
			t.Errorf("GET %s = %d %s, want 404 not_found", path, w.Code, w.Body)
		}
		wantStrictHeaders(t, w)
	}
	for _, c := range []struct{ method, path string }{{"PUT", "/console"}, {"DELETE", "/console"}, {"POST", "/console/console.js"}} {
		w := get(h, c.method, c.path)
		if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" || testkit.Problem(t, w).Code != "method_not_allowed" {
			t.Errorf("%s %s = %d Allow %q %s, want 405 Allow GET, HEAD", c.method, c.path, w.Code, w.Header().Get("Allow"), w.Body)
		}
	}
}

// TestPostWithoutScriptGoesBackToThePage: the page's forms post to it when
// the script does not run; the answer is 303 to the page, which echoes
// nothing of what was posted, whatever it was.
func TestPostWithoutScriptGoesBackToThePage(t *testing.T) {
	const key = "kg_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM"
	r := httptest.NewRequest("POST", "/console?x=1", strings.NewReader("api-key="+key))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	Handler(Config{}).ServeHTTP(w, r)
	if w.Code != 303 || w.Header().Get("Location") != "/console" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("POST /console = %d Location %q Cache-Control %q, want 303 to /console, no-store", w.Code, w.Header().Get("Location"), w.Header().Get("Cache-Control"))
	}
	if strings.Contains(w.Body.String(), key) || strings.Contains(fmt.Sprint(w.Header()), key) {
		t.Errorf("the answer echoes the key: %v %s", w.Header(), w.Body)
	}
}

// TestFormsNeverSubmitByGET parses the page: every form posts (to the page)
// or closes a dialog, and no field of a form that reaches the server has a
// name, so that a submit without the script sends nothing at all.
func TestFormsNeverSubmitByGET(t *testing.T) {
	doc, err := html.Parse(strings.NewReader(get(Handler(Config{}), "GET", "/console").Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	forms := 0
	var walk func(n *html.Node, method string)
	walk = func(n *html.Node, method string) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				forms++
				method = strings.ToLower(nodeAttr(n, "method"))
				if method != "post" && method != "dialog" {
					t.Errorf("form #%s has method %q: want post or dialog", nodeAttr(n, "id"), nodeAttr(n, "method"))
				}
				if method == "post" && nodeAttr(n, "action") != "/console" {
					t.Errorf("form #%s posts to %q, want /console", nodeAttr(n, "id"), nodeAttr(n, "action"))
				}
			case "input", "select", "textarea", "button":
				if method == "post" && nodeAttr(n, "name") != "" {
					t.Errorf("%s #%s in a posting form has the name %q: it would be sent", n.Data, nodeAttr(n, "id"), nodeAttr(n, "name"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, method)
		}
	}
	walk(doc, "")
	if forms != 3 {
		t.Errorf("%d forms, want 3 (sign in, create, the confirmation)", forms)
	}
}

// nodeAttr is the value of n's attribute name, or "".
func nodeAttr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// TestScopeHints: the create form suggests the scopes of the application
// that mounts the console, and none of another's.
func TestScopeHints(t *testing.T) {
	page := get(Handler(Config{Scopes: []string{"things:read", "things:write"}}), "GET", "/console").Body.String()
	if !strings.Contains(page, "this service's scopes are <code>things:read</code>, <code>things:write</code>.") || strings.Contains(page, "bingo") {
		t.Errorf("the scopes hint does not name the application's scopes:\n%s", page)
	}
	if page := get(Handler(Config{}), "GET", "/console").Body.String(); strings.Contains(page, "bingo") || strings.Contains(page, "scopes are") {
		t.Error("without Scopes the page still suggests some")
	}
}

// TestConfigIsEscaped: the paths and header come from the operator, but
// even a hostile value stays inside its attribute.
func TestConfigIsEscaped(t *testing.T) {
	page := get(Handler(Config{KeysPath: `/k"><script>alert(1)</script>`}), "GET", "/console").Body.String()
	if strings.Contains(page, "<script>alert(1)") {
		t.Errorf("a KeysPath with markup broke out of its attribute:\n%s", page)
	}
}

// TestPageHasNoInlineScriptOrStyle parses the page: under default-src
// 'self' an inline script, event handler or style attribute would be
// refused by the browser, so the page must have none.
func TestPageHasNoInlineScriptOrStyle(t *testing.T) {
	page := get(Handler(Config{}), "GET", "/console").Body.String()
	z := html.NewTokenizer(strings.NewReader(page))
	inScript, scripts := false, 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		switch tt {
		case html.EndTagToken:
			inScript = false
			continue
		case html.TextToken:
			if inScript && strings.TrimSpace(tok.Data) != "" {
				t.Errorf("inline script: %q", tok.Data)
			}
			continue
		case html.StartTagToken, html.SelfClosingTagToken:
		default:
			continue
		}
		switch tok.Data {
		case "script":
			inScript, scripts = true, scripts+1
			if src := attr(tok, "src"); !strings.HasPrefix(src, "/console/") {
				t.Errorf("script without a same-origin src: %v", tok)
			}
		case "style":
			t.Errorf("inline <style> element")
		case "link", "img", "iframe", "object", "embed":
			for _, a := range []string{"href", "src"} {
				if v := attr(tok, a); v != "" && !strings.HasPrefix(v, "/console/") {
					t.Errorf("<%s %s=%q> loads from elsewhere", tok.Data, a, v)
				}
			}
		}
		for _, a := range tok.Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") || strings.Contains(strings.ToLower(a.Val), "javascript:") {
				t.Errorf("<%s> has inline code or style: %s=%q", tok.Data, a.Key, a.Val)
			}
		}
	}
	if scripts != 1 {
		t.Errorf("the page has %d scripts, want 1 (console.js)", scripts)
	}
}

func attr(tok html.Token, name string) string {
	for _, a := range tok.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// TestAccessibleNames checks the page's fixed labels, which the browser
// tests and assistive technology rely on; the rows' "Revoke NAME" and
// "Rotate NAME" are set by the script and checked in a browser.
func TestAccessibleNames(t *testing.T) {
	page := get(Handler(Config{}), "GET", "/console").Body.String()
	for _, want := range []string{
		`<label for="api-key">API key</label>`,
		`<button type="submit" class="primary">Sign in</button>`,
		`>Create key</button>`,
		`<label for="create-name">Name</label>`,
		`<button type="submit" class="primary">Create</button>`,
		`<label for="new-key-value">New key</label>`,
		`<input id="new-key-value" readonly`,
		`<button type="button" id="copy">Copy</button>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	js, _ := fs.ReadFile(static, "static/console.js")
	for _, want := range []string{`'aria-label': 'Revoke ' + label(k)`, `'aria-label': 'Rotate ' + label(k)`, `role: 'img', 'aria-label': text`, `let text = 'Requests per day, '`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("console.js lacks %s", want)
		}
	}
}

// TestScriptKeepsTheRules is a guard on console.js: API text goes in as
// text, never as HTML; the key is never written to storage, a cookie or a
// URL; nothing is loaded from another origin; no code is built from
// strings.
func TestScriptKeepsTheRules(t *testing.T) {
	js, err := fs.ReadFile(static, "static/console.js")
	if err != nil {
		t.Fatal(err)
	}
	// The SVG namespace is a name, not a place anything is loaded from.
	code := strings.ReplaceAll(stripComments(string(js)), "'http://www.w3.org/2000/svg'", "")
	for _, banned := range []string{
		"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment", "DOMParser",
		"localStorage", "sessionStorage", "indexedDB", "document.cookie",
		"eval(", "new Function", "setTimeout('", `setTimeout("`,
		"http://", "https://", "location.href =", "history.pushState", "history.replaceState",
		".setAttribute('style'", "'on' +",
	} {
		if strings.Contains(code, banned) {
			t.Errorf("console.js uses %q", banned)
		}
	}
	// The key goes in the header and nowhere else.
	if n := strings.Count(code, "apiKey"); n == 0 || !strings.Contains(code, "headers[cfg.header] = apiKey;") {
		t.Errorf("console.js does not send the key in the configured header")
	}
	css, _ := fs.ReadFile(static, "static/console.css")
	if regexp.MustCompile(`@import|url\(`).Match(css) {
		t.Error("console.css loads something")
	}
}

// stripComments drops // line comments, so that the rules above may be
// named in the file's own comments. (console.js has no "//" in a string
// but the SVG namespace's.)
func stripComments(js string) string {
	var b strings.Builder
	for line := range strings.Lines(js) {
		if i := strings.Index(line, "//"); i >= 0 && !strings.Contains(line, "svgNS = '") {
			line = line[:i] + "\n"
		}
		b.WriteString(line)
	}
	return b.String()
}
