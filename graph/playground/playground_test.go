package playground_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"lasuite.fr/people/graph/playground"
)

// get runs one request through the handler, mounted as main mounts it.
func get(tb testing.TB, target string, header ...string) *http.Response {
	tb.Helper()
	mux := http.NewServeMux()
	h := playground.Handler()
	mux.Handle("/playground", h)
	mux.Handle("/playground/", h)
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Result()
}

func body(tb testing.TB, res *http.Response) string {
	tb.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// checkSecurityHeaders asserts the headers every answer of the playground carries.
func checkSecurityHeaders(t *testing.T, res *http.Response) {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	for _, directive := range []string{
		"default-src 'none'", "script-src 'self'", "connect-src 'self'", "form-action 'self' https:",
		"base-uri 'none'", "frame-ancestors 'none'",
	} {
		if !slices.Contains(strings.Split(csp, "; "), directive) {
			t.Errorf("Content-Security-Policy = %q, want the directive %q", csp, directive)
		}
	}
	// No script may come from anywhere but this origin, nor run inline or through eval.
	for _, weak := range []string{"'unsafe-eval'", "http:", "https:", "*"} {
		for d := range strings.SplitSeq(csp, "; ") {
			if strings.HasPrefix(d, "script-src") && strings.Contains(d, weak) {
				t.Errorf("script-src allows %s: %q", weak, d)
			}
		}
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	if got := res.Header.Get("Referrer-Policy"); got != "same-origin" {
		t.Errorf("Referrer-Policy = %q, want same-origin", got)
	}
}

var (
	assetRef = regexp.MustCompile(`(?:src|href)="([^"]*)"`)
	external = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+`)
)

func TestPage(t *testing.T) {
	for _, target := range []string{"/playground", "/playground/"} {
		t.Run(target, func(t *testing.T) {
			res := get(t, target)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200", target, res.StatusCode)
			}
			checkSecurityHeaders(t, res)
			if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q, want text/html; charset=utf-8", got)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			page := body(t, res)
			for _, want := range []string{
				`href="/auth/login?next=/playground"`, `action="/auth/logout"`, `method="post"`, `id="graphiql"`,
			} {
				if !strings.Contains(page, want) {
					t.Errorf("the page lacks %s", want)
				}
			}
			if strings.Contains(strings.ToLower(page), "<script>") || strings.Contains(page, " style=") {
				t.Error("the page has an inline script or style, which the Content-Security-Policy forbids")
			}
		})
	}
}

// TestAssets follows every link of the page: each is served, with its content type, and
// cached for long only because the link names its version.
func TestAssets(t *testing.T) {
	page := body(t, get(t, "/playground"))
	want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	var scripts, styles int
	for _, m := range assetRef.FindAllStringSubmatch(page, -1) {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") || strings.HasPrefix(ref, "/auth/") {
			continue
		}
		t.Run(ref, func(t *testing.T) {
			if !strings.HasPrefix(ref, "/playground/assets/") || !strings.Contains(ref, "?v=") {
				t.Fatalf("link %q is not a versioned /playground/assets/ link", ref)
			}
			res := get(t, ref)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200", ref, res.StatusCode)
			}
			checkSecurityHeaders(t, res)
			ext := path.Ext(strings.SplitN(ref, "?", 2)[0])
			if got := res.Header.Get("Content-Type"); got != want[ext] {
				t.Errorf("Content-Type = %q, want %q", got, want[ext])
			}
			if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control = %q, want a year, immutable", got)
			}
			if len(body(t, res)) < 100 {
				t.Error("the asset is (nearly) empty")
			}
		})
		switch {
		case strings.Contains(ref, ".js?"):
			scripts++
		case strings.Contains(ref, ".css?"):
			styles++
		}
	}
	if scripts != 4 || styles != 2 {
		t.Errorf("the page links %d scripts and %d style sheets, want React, ReactDOM, GraphiQL, the bootstrap and 2 style sheets", scripts, styles)
	}
}

func TestAssetCaching(t *testing.T) {
	page := body(t, get(t, "/playground"))
	ref := regexp.MustCompile(`/playground/assets/playground\.js\?v=[0-9a-f]+`).FindString(page)
	if ref == "" {
		t.Fatal("the page does not link playground.js")
	}
	unversioned := strings.SplitN(ref, "?", 2)[0]
	for _, target := range []string{unversioned, unversioned + "?v=0123456789abcdef"} {
		if got := get(t, target).Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control = %q, want no-cache (not the current version)", target, got)
		}
	}
	res := get(t, ref)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if res := get(t, unversioned, "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match = %d, want 304", res.StatusCode)
	}

	plain := body(t, res)
	res = get(t, ref, "Accept-Encoding", "br, gzip")
	if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("Content-Encoding = %q, Vary = %q: want gzip, Accept-Encoding", res.Header.Get("Content-Encoding"), res.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if unzipped, err := io.ReadAll(zr); err != nil || string(unzipped) != plain {
		t.Errorf("the gzipped answer does not unzip to the file (err: %v)", err)
	}
	if res := get(t, ref, "Accept-Encoding", "gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 still got gzip")
	}
}

func TestNotFound(t *testing.T) {
	for _, target := range []string{
		"/playground/assets/missing.js",
		"/playground/assets/",
		"/playground/assets/graphiql/",
		"/playground/assets/graphiql/graphiql.min.js.map",
		"/playground/playground.html",
		"/playground/other",
	} {
		res := get(t, target)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", target, res.StatusCode)
		}
		checkSecurityHeaders(t, res)
	}
}

func TestLicenses(t *testing.T) {
	for _, name := range []string{"graphiql", "react", "react-dom"} {
		res := get(t, "/playground/assets/"+name+"/LICENSE")
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("GET %s licence = %d %q, want 200 text/plain", name, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if b := body(t, res); !strings.Contains(b, "MIT License") {
			t.Errorf("the %s licence is not MIT's", name)
		}
	}
}

// TestNoExternalHost keeps the page working offline and inside its Content-Security-Policy:
// our page, bootstrap and style sheet name no other host (the vendored bundles mention URLs in
// comments and error messages, and never load them, which the browser check confirms).
func TestNoExternalHost(t *testing.T) {
	files := map[string]string{"page": body(t, get(t, "/playground"))}
	for _, name := range []string{"assets/playground.js", "assets/playground.css", "playground.html"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	for name, text := range files {
		for _, m := range external.FindAllString(text, -1) {
			t.Errorf("%s names an external host: %s", name, m)
		}
	}
}

func TestMethods(t *testing.T) {
	h := playground.Handler()
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/playground", bytes.NewReader(nil)))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s /playground = %d, want 405", method, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/playground", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("HEAD /playground = %d, want 200 with the headers", rec.Code)
	}
}
