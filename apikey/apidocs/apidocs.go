// Package apidocs serves an API reference page, rendered in the browser
// from an OpenAPI document on the same origin, on which a reader can type
// an API key (Authorize) and try any operation against the function.
//
// The renderer is Swagger UI (swagger-ui-dist, the one FastAPI's /docs
// shows), pinned at the version in static/swagger-ui/VERSION and embedded
// in the binary, gzipped: nothing is loaded from another origin. Its one
// bundle runs under a policy as strict as the console's and stricter in
// places (ContentSecurityPolicy): no inline script or style, no eval, API
// calls to this origin only. docs/api.md says why this renderer;
// fetch-swagger-ui.sh re-fetches it.
//
// The page holds no secret and needs no key to be served: mount it in
// front of the key check, beside the document it shows:
//
//	mux.Handle("/docs", apidocs.Handler(apidocs.Config{SpecURL: "/openapi.json"}))
//	mux.Handle("/docs/", apidocs.Handler(apidocs.Config{SpecURL: "/openapi.json"}))
//
// The key typed into the page stays in the tab's memory (never in
// localStorage, a cookie or an address) and is sent only in the header the
// document's security scheme names.
package apidocs

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/binary"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/problem"
)

// Config says where the page is mounted and which document it shows, on
// the same origin.
type Config struct {
	// Path is where the page is served, without a trailing slash; its
	// assets are served under Path + "/". Default "/docs".
	Path string
	// SpecURL is the OpenAPI document's path on this origin. Default
	// "/openapi.json".
	SpecURL string
	// Title is the page's title. Default "API reference".
	Title string
}

// The defaults of Config.
const (
	DefaultPath    = "/docs"
	DefaultSpecURL = "/openapi.json"
	DefaultTitle   = "API reference"
)

// ContentSecurityPolicy is the policy of every response: scripts and
// styles from files of this origin only (no inline script or style, no
// eval), requests to this origin only (so that the page tries requests
// against this function and nothing else), no framing. The one allowance
// beyond 'self' is img-src data:, for the icons Swagger UI's stylesheet
// draws as data: SVGs: an image cannot run code or send anything.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Version is the embedded Swagger UI's version (swagger-ui-dist on npm).
var Version = strings.TrimSpace(version)

//go:embed static/swagger-ui/VERSION
var version string

//go:embed static/docs.html
var static embed.FS

var page = template.Must(template.ParseFS(static, "static/docs.html"))

// The files, as strings: served from the binary's read-only data, never
// copied.
var (
	//go:embed static/docs.js
	docsJS string
	//go:embed static/swagger-ui/swagger-ui-bundle.js.gz
	bundleGz string
	//go:embed static/swagger-ui/swagger-ui.css.gz
	cssGz string
	//go:embed static/swagger-ui/favicon-32x32.png
	favicon string
)

// file is one response body: its Content-Type, its bytes (gzipped when gz),
// and its Cache-Control.
type file struct {
	typ   string
	body  string
	gz    bool
	cache string
}

// Cache-Control of the page and of its own script, revalidated on every
// load so that an upgrade is seen at once; and of Swagger UI's files, whose
// path names their version, so that they never change.
const (
	revalidate = "no-cache"
	immutable  = "public, max-age=31536000, immutable"
)

// Handler returns the page at cfg.Path and its files under cfg.Path + "/":
// Swagger UI's under cfg.Path + "/swagger-ui-" + Version + "/", for GET and
// HEAD; cfg.Path + "/" redirects to the page. Any other path under
// cfg.Path + "/" is 404 and any other method 405, as problem details.
// Empty fields of cfg take their defaults.
func Handler(cfg Config) http.Handler {
	cfg = withDefaults(cfg)
	assets := cfg.Path + "/swagger-ui-" + Version
	var html bytes.Buffer
	if err := page.Execute(&html, struct {
		Config
		Assets string
	}{cfg, assets}); err != nil {
		panic("apidocs: " + err.Error()) // cannot happen: the template and Config are fixed
	}
	files := map[string]file{
		cfg.Path:                         {"text/html; charset=utf-8", html.String(), false, revalidate},
		cfg.Path + "/docs.js":            {"text/javascript; charset=utf-8", docsJS, false, revalidate},
		assets + "/swagger-ui-bundle.js": {"text/javascript; charset=utf-8", bundleGz, true, immutable},
		assets + "/swagger-ui.css":       {"text/css; charset=utf-8", cssGz, true, immutable},
		assets + "/favicon-32x32.png":    {"image/png", favicon, false, immutable},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		f, ok := files[r.URL.Path]
		get := r.Method == http.MethodGet || r.Method == http.MethodHead
		if !ok && r.URL.Path == cfg.Path+"/" && get {
			http.Redirect(w, r, cfg.Path, http.StatusMovedPermanently) // a typed slash: the page is without it
			return
		}
		if !ok {
			problem.Write(w, problem.New(http.StatusNotFound, apikey.CodeNotFound, "There is no documentation file at "+problem.QuoteShort(r.URL.Path)+"."))
			return
		}
		if !get {
			h.Set("Allow", "GET, HEAD")
			problem.Write(w, problem.New(http.StatusMethodNotAllowed, apikey.CodeMethodNotAllowed,
				problem.QuoteShort(r.Method)+" is not allowed here; use GET, HEAD."))
			return
		}
		h.Set("Content-Type", f.typ)
		h.Set("Cache-Control", f.cache)
		body := io.Reader(strings.NewReader(f.body))
		size := len(f.body)
		if f.gz {
			h.Set("Vary", "Accept-Encoding")
			if acceptsGzip(r.Header.Values("Accept-Encoding")) {
				h.Set("Content-Encoding", "gzip")
			} else {
				// Rare (every browser takes gzip): unzipped as it is sent.
				// gzip's trailer ends with the size unzipped (mod 2³²: the
				// files are far smaller).
				zr, err := gzip.NewReader(body)
				if err != nil {
					panic("apidocs: " + err.Error()) // cannot happen: embedded, and checked by the tests
				}
				body, size = zr, int(binary.LittleEndian.Uint32([]byte(f.body[len(f.body)-4:])))
			}
		}
		h.Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			io.Copy(w, body)
		}
	})
}

// acceptsGzip says whether Accept-Encoding values admit gzip: named, or
// else * when gzip is not named, without q=0.
func acceptsGzip(values []string) bool {
	gzipOK, starOK := false, false
	named := false
	for _, v := range values {
		for _, coding := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(coding, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			ok := !zeroQ(params)
			switch name {
			case "gzip", "x-gzip":
				named, gzipOK = true, gzipOK || ok
			case "*":
				starOK = starOK || ok
			}
		}
	}
	if named {
		return gzipOK
	}
	return starOK
}

// zeroQ says whether an Accept-Encoding coding's parameters say q=0.
func zeroQ(params string) bool {
	for _, p := range strings.Split(params, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(name), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			return err == nil && q == 0
		}
	}
	return false
}

// withDefaults fills cfg's empty fields and drops a trailing slash from
// Path.
func withDefaults(cfg Config) Config {
	cfg.Path = strings.TrimRight(cfg.Path, "/")
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.SpecURL == "" {
		cfg.SpecURL = DefaultSpecURL
	}
	if cfg.Title == "" {
		cfg.Title = DefaultTitle
	}
	return cfg
}
