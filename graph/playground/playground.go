// Package playground serves GraphiQL at /playground, for people trying the API in a browser:
// it sends queries to /graphql with the session cookie, and links to /auth/login and
// /auth/logout. Every file it needs is embedded in the binary, so it works with no network,
// and its Content-Security-Policy loads nothing from another origin. It imports none of our
// packages, and nothing imports it but main.
//
// The page (playground.html) and its bootstrap (assets/playground.js, assets/playground.css)
// are ours. The rest of assets/ is copied byte for byte, with each package's licence, from
// the npm registry:
//
//	graphiql 3.9.0    graphiql.min.js, graphiql.min.css, LICENSE   → assets/graphiql/
//	react 18.3.1      umd/react.production.min.js, LICENSE         → assets/react/
//	react-dom 18.3.1  umd/react-dom.production.min.js, LICENSE     → assets/react-dom/
//
// graphiql 3.9.0 is the newest 3.x. Its graphiql.min.js is a UMD bundle that includes
// graphql-js, @graphiql/react and react-compiler-runtime and needs only the React and
// ReactDOM globals (3.8.3 ships an unminified 3.5 MB development build under that name). To
// refresh them (or change versions, then update the table above), from the repository root:
//
//	A=$PWD/graph/playground/assets && cd "$(mktemp -d)" &&
//	npm pack graphiql@3.9.0 react@18.3.1 react-dom@18.3.1 &&
//	for p in graphiql-3.9.0 react-18.3.1 react-dom-18.3.1; do
//		mkdir $p && tar -xzf $p.tgz -C $p --strip-components=1; done &&
//	cp graphiql-3.9.0/{graphiql.min.js,graphiql.min.css,LICENSE} $A/graphiql/ &&
//	cp react-18.3.1/{umd/react.production.min.js,LICENSE} $A/react/ &&
//	cp react-dom-18.3.1/{umd/react-dom.production.min.js,LICENSE} $A/react-dom/
//
// At the same versions, git then shows no change. Then check in a browser that GraphiQL
// renders with no Content-Security-Policy violation in the console.
package playground

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// contentSecurityPolicy is sent with the page and every asset. Two directives are wider than
// 'self', for reasons checked in Chromium:
//   - style-src 'unsafe-inline': GraphiQL's dialogs (settings, shortcuts) lock scrolling with
//     a <style> element whose text depends on the scrollbar's width, so no hash can allow it.
//   - form-action https:: the browser checks form-action against every redirect of a form
//     submission, and POST /auth/logout redirects to the provider's end-session endpoint
//     (ProConnect's, on another origin). With 'self' alone, logging out would end our session
//     but never reach the provider. The page has no markup injected into it, so a form to
//     another https origin is not a threat here.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"connect-src 'self'; img-src 'self' data:; font-src 'self' data:; form-action 'self' https:; " +
	"base-uri 'none'; frame-ancestors 'none'"

// assetPrefix is the path under which the embedded files are served.
const assetPrefix = "/playground/assets/"

//go:embed playground.html
var pageTemplate string

//go:embed assets
var assetFS embed.FS

// contentTypes lists the only kinds of file served; an embedded file of any other kind is a
// mistake that Handler reports at once. LICENSE files have no extension.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	"":     "text/plain; charset=utf-8",
}

type asset struct {
	body        []byte
	gzipped     func() []byte // compressed on first use, so that starting the server stays fast
	contentType string
	version     string // a prefix of the SHA-256 of body: the ?v= of the page's links, and the ETag
}

type handler struct {
	page   []byte
	assets map[string]*asset // by path under assets/
	mux    *http.ServeMux
}

// Handler serves the page at /playground and /playground/, and the embedded files under
// /playground/assets/. main mounts it at both "/playground" and "/playground/". It panics when
// the embedded files are inconsistent (a link to a missing file, a file of an unknown kind),
// which every test catches.
func Handler() http.Handler {
	h := &handler{assets: map[string]*asset{}}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return &fs.PathError{Op: "serve", Path: p, Err: fs.ErrInvalid}
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		h.assets[strings.TrimPrefix(p, "assets/")] = &asset{
			body: body, contentType: ct, version: hex.EncodeToString(sum[:8]),
			gzipped: sync.OnceValue(func() []byte { return compress(body) }),
		}
		return nil
	})
	if err != nil {
		panic("playground: " + err.Error())
	}
	var page bytes.Buffer
	tmpl := template.Must(template.New("playground.html").Funcs(template.FuncMap{
		"asset": func(name string) (string, error) {
			a, ok := h.assets[name]
			if !ok {
				return "", &fs.PathError{Op: "link", Path: name, Err: fs.ErrNotExist}
			}
			return assetPrefix + name + "?v=" + a.version, nil
		},
	}).Parse(pageTemplate))
	if err := tmpl.Execute(&page, nil); err != nil {
		panic("playground: " + err.Error())
	}
	h.page = page.Bytes()

	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /playground", h.servePage)
	h.mux.HandleFunc("GET /playground/{$}", h.servePage)
	h.mux.HandleFunc("GET "+assetPrefix+"{name...}", h.serveAsset)
	return h
}

// ServeHTTP sets the security headers on every answer, 404s and 405s included.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

func (h *handler) servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(h.page)))
	w.Write(h.page)
}

// serveAsset answers with a year of caching when the link names the current version (the
// page's links always do), and makes any other request revalidate, so that a new binary's
// files are never hidden behind an old cache entry.
func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Vary", "Accept-Encoding")
	if r.URL.Query().Get("v") == a.version {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	body, etag := a.body, `"`+a.version+`"`
	if acceptsGzip(r) {
		body, etag = a.gzipped(), `"`+a.version+`-gzip"`
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reads Accept-Encoding as RFC 9110 §12.5.3 does: "gzip;q=0" refuses gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := 1.0
			if k, v, ok := strings.Cut(params, "="); ok && strings.TrimSpace(k) == "q" {
				q, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			}
			return q > 0
		}
	}
	return false
}

func compress(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // errors only for a bad level
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}
