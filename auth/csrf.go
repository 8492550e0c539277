package auth

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"lasuite.fr/people/wire"
)

// Cross-site request forgery. A browser attaches the session cookie (SameSite=Lax) to
// top-level GET navigations from any site, and to any request from the server's own origin.
// Three rules keep another site from acting with it:
//
//  1. No mutation over GET, whoever the caller: CSRF answers 405 to a GET whose document
//     contains a mutation (or subscription), even when operationName picks a query, so a link
//     or redirect can never change anything. The GraphQL handler refuses them too (405, once it
//     knows which operation runs, persisted queries included); this check comes first and
//     needs no operation.
//  2. A cookie-authenticated request with any other method must be JSON. A cross-site page can
//     only send text/plain, application/x-www-form-urlencoded or multipart/form-data without
//     a CORS preflight, and the preflight is granted to the allowed origins only. Every such
//     request is checked, query or mutation, so that the rule needs no parsing of the body.
//  3. It must also come from the server's own origin or an allowed one, by its Origin header
//     or, without one, by Sec-Fetch-Site same-origin or none (a person's own navigation).
//     Browsers send one or the other on every POST; a request with neither is refused, so a
//     script replaying a cookie must say where it comes from. same-site is not enough: a
//     sibling subdomain is another party.
//  4. A cookie-authenticated GET that the browser says comes from another site
//     (Sec-Fetch-Site cross-site or same-site) must name an allowed Origin, as the frontend's
//     credentialed fetches do. A link or an <img> on another site cannot read the answer, but
//     it would run the query as the user and spend the user's rate limit, which would let any
//     page lock its visitors out of the API. The refusal comes before the GraphQL handler,
//     where the limit is counted. A GET without Sec-Fetch-Site (a person's own navigation,
//     curl, an older browser) is left alone: it is read-only (rule 1).
//
// Requests authenticated by an Authorization header are not checked by rules 2 and 3: a
// browser never adds that header on its own, and Middleware ignores the cookie when it is there.

// ParseOrigin returns rawURL's origin as browsers write it in the Origin header: lower-case
// scheme://host, with the port only when it is not the scheme's default. It refuses anything
// but http and https, and anything with a path other than "/", a query or user information.
func ParseOrigin(rawURL string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	switch {
	case err != nil:
		return "", errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("the scheme must be http or https")
	case u.Host == "" || u.User != nil || u.Opaque != "":
		return "", errors.New("want scheme://host[:port]")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", errors.New("an origin has no path, query or fragment")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, nil
}

// TrustedOrigin reports whether a browser sent r from the server's own origin or an allowed
// one (rule 3 above). The logout handler, a form POST, uses it too.
func (s *Sessions) TrustedOrigin(r *http.Request) bool {
	if origins := r.Header.Values("Origin"); len(origins) > 0 {
		return len(origins) == 1 && (origins[0] == s.public && s.public != "" || s.allowed[origins[0]])
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	}
	return false
}

// CSRF applies the rules above. It goes after Middleware, which tells it how the request was
// authenticated.
func (s *Sessions) CSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			if mutatesOverGET(r) {
				w.Header().Set("Allow", "POST")
				wire.Write(w, http.StatusMethodNotAllowed, wire.Error{Code: wire.CodeMethodNotAllowed, Message: "mutations must be sent with POST"})
				return
			}
			if p, ok := PrincipalFrom(r.Context()); ok && p.Method == MethodSession && fromAnotherSite(r) && !s.TrustedOrigin(r) {
				s.log.WarnContext(r.Context(), "cross-site request refused", "reason", "cross-site get",
					"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
				wire.Write(w, http.StatusForbidden, wire.Error{Code: wire.CodeForbidden, Message: "requests with the session cookie must come from an allowed origin"})
				return
			}
			next.ServeHTTP(w, r)
			return
		case http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r) // gqlgen answers these without running anything
			return
		}
		if p, ok := PrincipalFrom(r.Context()); !ok || p.Method != MethodSession {
			next.ServeHTTP(w, r)
			return
		}
		if !jsonRequest(r) {
			s.log.WarnContext(r.Context(), "cross-site request refused", "reason", "content type", "content_type", r.Header.Get("Content-Type"))
			wire.Write(w, http.StatusForbidden, wire.Error{Code: wire.CodeForbidden, Message: "requests with the session cookie must have Content-Type: application/json"})
			return
		}
		if !s.TrustedOrigin(r) {
			s.log.WarnContext(r.Context(), "cross-site request refused", "reason", "origin",
				"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			wire.Write(w, http.StatusForbidden, wire.Error{Code: wire.CodeForbidden, Message: "requests with the session cookie must come from an allowed origin"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fromAnotherSite reports whether the browser says r comes from another site (rule 4).
func fromAnotherSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}

// jsonRequest reports whether r's body is declared as JSON: a type no cross-site form can send
// without a CORS preflight. gqlgen itself only reads application/json bodies.
func jsonRequest(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/json" || mt == "application/graphql-response+json")
}

// mutatesOverGET reports whether any query parameter of a GET holds a document with an
// operation other than a query. A document that does not parse is left to gqlgen, which
// reports the syntax error and runs nothing.
func mutatesOverGET(r *http.Request) bool {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return false // gqlgen answers 400 and runs nothing
	}
	for _, q := range params["query"] {
		doc, err := parser.ParseQuery(&ast.Source{Input: q})
		if err != nil {
			continue
		}
		for _, op := range doc.Operations {
			if op.Operation != ast.Query {
				return true
			}
		}
	}
	return false
}

// CORS lets exactly the allowed origins call the API from a browser with credentials: it
// answers their preflights and echoes their Origin, never "*". Other origins get no CORS
// header at all, so their scripts can neither send JSON with the cookie nor read answers.
func (s *Sessions) CORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin") // answers differ by origin: shared caches must know
		origin := r.Header.Get("Origin")
		allowed := origin != "" && s.allowed[origin]
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if allowed {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Credentials", "true")
				h.Set("Access-Control-Allow-Methods", "GET, POST")
				h.Set("Access-Control-Allow-Headers", "Content-Type, Accept, Authorization")
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		next.ServeHTTP(w, r)
	})
}
