// Package console serves the key holders' web console: one static page,
// embedded in the binary, on which any key holder signs in with its key and
// sees the key's details and requests per day; a key that may manage keys
// also lists, creates, rotates and revokes the keys of its owner, and
// charts the requests of any of them.
//
// The page holds no secret and needs no key to be served, so Handler needs
// no Gate: it only has to be told where the Gate's endpoints are mounted on
// the same origin (Config). The page calls them from the browser with the
// key the user pasted, which it keeps in memory only: never in
// localStorage, a cookie or a URL.
//
// Mount the handler in front of the key check, since the page itself is
// public:
//
//	cons := console.Handler(console.Config{Header: gate.Config().Header})
//	mux.Handle("GET /console", cons)
//	mux.Handle("GET /console/", cons)
//
// Everything is served under a strict Content-Security-Policy (default-src
// 'self', no inline script or style, frame-ancestors 'none'), with nosniff
// and Referrer-Policy: no-referrer. Nothing is loaded from another origin,
// so the console works offline; the chart is plain SVG.
package console

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/keygate/keygate/apikey"

	"github.com/keygate/keygate/internal/problem"
)

// Config says where the console is mounted and where the API it talks to
// is, all on the same origin.
type Config struct {
	// Path is where the page is served, without a trailing slash; its
	// assets are served under Path + "/". Default "/console".
	Path string
	// KeysPath is where KeysHandlers are mounted (the list at GET KeysPath,
	// a key at KeysPath/{id}). Default "/v1/keys".
	KeysPath string
	// UsagePath is where UsageHandler is mounted. Default "/v1/usage".
	// KeysHandlers.KeyUsage is expected at KeysPath/{id}/usage.
	UsagePath string
	// WhoAmIPath is where KeysHandlers.WhoAmI is mounted, for any valid key.
	// Default "/v1/whoami".
	WhoAmIPath string
	// Scopes are the scopes the application's routes need, which the page
	// suggests for a new key; none: it suggests none.
	Scopes []string
	// Header is the request header that carries the key: the Gate's
	// Config.Header. Default "X-API-Key".
	Header string
}

// The defaults of Config.
const (
	DefaultPath       = "/console"
	DefaultKeysPath   = "/v1/keys"
	DefaultUsagePath  = "/v1/usage"
	DefaultWhoAmIPath = "/v1/whoami"
	DefaultHeader     = "X-API-Key"
)

// ContentSecurityPolicy is the policy of every response: scripts, styles,
// images and API calls from the page's own origin only, no inline script
// or style, and no framing (no clickjacking of the Revoke button).
const ContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

// assets are the files served under Path + "/", by name, with their types.
var assets = map[string]string{
	"console.js":  "text/javascript; charset=utf-8",
	"console.css": "text/css; charset=utf-8",
	"favicon.svg": "image/svg+xml",
}

var page = template.Must(template.ParseFS(static, "static/console.html"))

// Handler returns the console: the page at cfg.Path and its assets under
// cfg.Path + "/", for GET and HEAD; cfg.Path + "/" redirects to the page,
// and so does a POST to cfg.Path (303): the page's forms post there when
// the script does not run, so that nothing typed ever lands in an address.
// Any other path under cfg.Path + "/" is 404 and any other method 405, as
// problem details. Empty fields of cfg take their defaults.
func Handler(cfg Config) http.Handler {
	cfg = withDefaults(cfg)
	var html bytes.Buffer
	if err := page.Execute(&html, cfg); err != nil {
		panic("console: " + err.Error()) // cannot happen: the template and Config are fixed
	}
	files := map[string]file{cfg.Path: {"text/html; charset=utf-8", html.Bytes()}}
	for name, typ := range assets {
		body, err := static.ReadFile("static/" + name)
		if err != nil {
			panic("console: " + err.Error()) // cannot happen: embedded above
		}
		files[cfg.Path+"/"+name] = file{typ, body}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == cfg.Path && r.Method == http.MethodPost {
			// The sign-in form submitted without the script: it sends no
			// field, and whatever a client sent is not read. Back to the
			// page, by GET, with nothing in the address.
			h.Set("Cache-Control", "no-store")
			http.Redirect(w, r, cfg.Path, http.StatusSeeOther)
			return
		}
		f, ok := files[r.URL.Path]
		if !ok && r.URL.Path == cfg.Path+"/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			http.Redirect(w, r, cfg.Path, http.StatusMovedPermanently) // a typed slash: the page is without it
			return
		}
		if !ok {
			problem.Write(w, problem.New(http.StatusNotFound, apikey.CodeNotFound, "There is no console file at "+problem.QuoteShort(r.URL.Path)+"."))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			problem.Write(w, problem.New(http.StatusMethodNotAllowed, apikey.CodeMethodNotAllowed,
				problem.QuoteShort(r.Method)+" is not allowed here; use GET, HEAD."))
			return
		}
		h.Set("Content-Type", f.typ)
		h.Set("Content-Length", strconv.Itoa(len(f.body)))
		// Revalidated on every load, so that an upgrade is seen at once;
		// the files are small.
		h.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(f.body)
		}
	})
}

// file is one response body and its Content-Type.
type file struct {
	typ  string
	body []byte
}

// withDefaults fills cfg's empty fields and drops a trailing slash from
// Path.
func withDefaults(cfg Config) Config {
	cfg.Path = strings.TrimRight(cfg.Path, "/")
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.KeysPath == "" {
		cfg.KeysPath = DefaultKeysPath
	}
	if cfg.UsagePath == "" {
		cfg.UsagePath = DefaultUsagePath
	}
	if cfg.WhoAmIPath == "" {
		cfg.WhoAmIPath = DefaultWhoAmIPath
	}
	if cfg.Header == "" {
		cfg.Header = DefaultHeader
	}
	return cfg
}
