package auth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirectTarget bounds a redirect target, next or configured: longer ones are refused
// rather than cut, and no frontend route comes near it.
const maxRedirectTarget = 2048

// localTarget returns what the Location header will say to send the browser to raw, a path on
// the server's own origin (PUBLIC_URL) as a login's next must be, or false. It is decided on
// the URL that is sent, not on raw: raw is parsed, resolved against public, and the result
// written back in its escaped form, which must still be a path on public's origin in the eyes
// of a browser (sameOriginPath); nothing rewrites it afterwards (redirect). Anything unusual is
// refused rather than repaired: backslashes, control characters, spaces or non-ASCII (raw or
// percent-encoded in the path), empty, "." or ".." path segments, and more than
// maxRedirectTarget bytes. A frontend's own paths never have them, and a browser or a proxy
// further on may read each of them differently from us.
func localTarget(public *url.URL, raw string) (string, bool) {
	if raw == "" || raw[0] != '/' || len(raw) > maxRedirectTarget || !plainASCII(raw) {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Opaque != "" || u.User != nil || u.Host != "" || !cleanPath(u.Path) {
		return "", false
	}
	abs := public.ResolveReference(u)
	if abs.Scheme != public.Scheme || abs.Host != public.Host || abs.User != nil {
		return "", false
	}
	out := abs.EscapedPath()
	if abs.RawQuery != "" {
		out += "?" + abs.RawQuery
	}
	if abs.Fragment != "" {
		out += "#" + abs.EscapedFragment()
	}
	if !sameOriginPath(out) {
		return "", false
	}
	return out, true
}

// configuredTarget checks a redirect target from the configuration (LOGIN_REDIRECT_URL,
// LOGIN_REDIRECT_URL_FAILURE, LOGOUT_REDIRECT_URL) and returns what Location will say. The
// operator may send the browser to another origin, such as a separate frontend, so an absolute
// http(s) URL is accepted, under the same rules for its path as a local one (and no userinfo);
// anything else must be a local path (localTarget).
func configuredTarget(public *url.URL, raw string) (string, error) {
	if raw == "" {
		return "", errors.New("empty")
	}
	if raw[0] == '/' {
		if out, ok := localTarget(public, raw); ok {
			return out, nil
		}
		return "", errors.New("not a plain path: no //, backslash, . or .. segment, space, control or non-ASCII character")
	}
	if len(raw) > maxRedirectTarget || !plainASCII(raw) {
		return "", errors.New("not a URL of printable ASCII characters")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("want a path such as /app or an http(s) URL")
	case u.Host == "" || u.Opaque != "" || u.User != nil || strings.HasSuffix(u.Host, ":"):
		return "", errors.New("want scheme://host[:port]/path, without userinfo")
	case u.Path != "" && !cleanPath(u.Path):
		return "", errors.New("the path must be plain: no //, backslash, . or .. segment, space, control or non-ASCII character")
	}
	out := u.String()
	if back, err := url.Parse(out); err != nil || back.Host != u.Host || back.Scheme != u.Scheme || back.User != nil {
		return "", errors.New("not a URL that reads back the same")
	}
	return out, nil
}

// ValidateRedirectTarget reports whether a configured redirect target (LOGIN_REDIRECT_URL,
// LOGIN_REDIRECT_URL_FAILURE, LOGOUT_REDIRECT_URL) is one Login accepts, so that the
// configuration is refused at start rather than a login failing later.
func ValidateRedirectTarget(publicURL, raw string) error {
	public, err := url.Parse(publicURL)
	if err != nil {
		return err
	}
	_, err = configuredTarget(public, raw)
	return err
}

// plainASCII reports whether s has only printable ASCII characters other than space and
// backslash: what a URL the server builds ever needs, and none of what browsers drop, fold or
// read as a slash (tab, newline, NUL, a backslash, U+2215, U+FF0F, U+3002…).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// cleanPath reports whether a decoded path is one that every reader resolves alike: absolute,
// plain ASCII once percent-decoded (so %5C, %00 or %E2%88%95 are refused as their raw forms
// are), and without empty, "." or ".." segments (so %2F%2F, /./ and /%2e%2e/ are refused).
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' || !plainASCII(p) {
		return false
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || (s == "" && i != len(segs)-1) {
			return false
		}
	}
	return true
}

// sameOriginPath is the browser's side of localTarget's check. A Location value is parsed by
// browsers (WHATWG URL) relative to the page: one that starts with a single "/" followed by
// neither "/" nor "\" is a path-absolute URL, which keeps the page's scheme, host and port,
// provided that it has no tab, newline or leading control character or space for the parser
// to drop first, and no backslash, which special schemes read as "/".
func sameOriginPath(s string) bool {
	return s != "" && s[0] == '/' && (len(s) == 1 || (s[1] != '/' && s[1] != '\\')) && plainASCII(s)
}

// redirect answers with a redirect to target, written as it is: http.Redirect would clean
// the path again, after our checks, and its cleaning is what turned /./%5Cevil.example into
// /\evil.example.
func redirect(w http.ResponseWriter, target string, status int) {
	h := w.Header()
	h.Set("Location", target)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
}
