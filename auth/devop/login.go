package devop

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/demo"
)

// loginListSize is how many users the login page lists: the e2e users, then the oldest others.
const loginListSize = 23

// pageStyle is the pages' only style sheet, allowed by its hash: the CSP forbids everything else.
const pageStyle = `body{font:16px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:44rem;padding:0 1rem;color:#161616}
h1{font-size:1.5rem}.warn{background:#fff4e5;border-left:4px solid #b34000;padding:.5rem 1rem}
ul{list-style:none;padding:0}li{margin:.4rem 0}
button{width:100%;text-align:left;padding:.6rem 1rem;border:1px solid #929292;border-radius:4px;background:#f6f6f6;font:inherit;cursor:pointer}
button:hover,button:focus{background:#e3e3fd;border-color:#000091}.email,.org{color:#555;font-size:.9rem}`

var pageStyleHash = func() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var pages = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Development sign-in</title><style>{{.Style}}</style></head>
<body><main>
<h1>Development sign-in</h1>
<p class="warn">This OpenID provider exists for development only: pick a demo user to sign in to <strong>{{.ClientID}}</strong>. There is no password.</p>
{{if .Users}}<form method="post" action="{{.Action}}">
<input type="hidden" name="id" value="{{.ID}}">
<ul>{{range .Users}}
<li><button type="submit" name="sub" value="{{.Sub}}"><strong>{{if .Name}}{{.Name}}{{else}}(no name){{end}}</strong>
<span class="email">{{.Email}}</span>{{if .Organization}} · <span class="org">{{.Organization}}</span>{{end}}</button></li>{{end}}
</ul></form>
{{else}}<p>There are no active users with an email: load the demo data with <code>make demo</code>.</p>{{end}}
</main></body></html>
{{define "message"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development sign-in</title><style>{{.Style}}</style></head>
<body><main><h1>Development sign-in</h1><p>{{.Message}}</p></main></body></html>
{{end}}`))

type loginData struct {
	Style    template.CSS
	ClientID string
	Action   string
	ID       string
	Users    []store.DevUser
}

// setPageHeaders allows the page its own style sheet and forms posted to the provider, from
// where the redirects after a sign-in lead to the relying party: browsers apply form-action to
// those redirects too.
func (p *Provider) setPageHeaders(w http.ResponseWriter) {
	formAction := []string{"'self'"}
	for _, uri := range p.rp.RedirectURIs {
		if u, err := url.Parse(uri); err == nil && u.Scheme != "" && u.Host != "" {
			formAction = append(formAction, u.Scheme+"://"+u.Host)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+pageStyleHash+"; form-action "+
		strings.Join(slices.Compact(formAction), " ")+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
}

func (p *Provider) message(w http.ResponseWriter, status int, msg string) {
	p.setPageHeaders(w)
	w.WriteHeader(status)
	pages.ExecuteTemplate(w, "message", struct {
		Style   template.CSS
		Message string
	}{pageStyle, msg})
}

const msgUnknownRequest = "This sign-in request is unknown, expired or already used: start again from the application."

// loginPage lists the users to sign in as, for the auth request named by authRequestID. The
// user named by login_hint (an email), if any, comes first.
func (p *Provider) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	a, ok := p.storage.pendingAuthRequest(id)
	if !ok {
		p.message(w, http.StatusBadRequest, msgUnknownRequest)
		return
	}
	users, err := p.storage.users.DevUsers(r.Context(), store.DevUserFilter{
		First: []string{demo.E2EOwnerSub, demo.E2EAdministratorSub, demo.E2EMemberSub}, Limit: loginListSize})
	if err == nil && strings.Contains(a.loginHint, "@") {
		var hinted []store.DevUser
		if hinted, err = p.storage.users.DevUsers(r.Context(), store.DevUserFilter{Email: a.loginHint, Limit: 1}); len(hinted) == 1 {
			users = append(hinted, slices.DeleteFunc(users, func(u store.DevUser) bool { return u.ID == hinted[0].ID })...)
		}
	}
	if err != nil {
		p.log.ErrorContext(r.Context(), "dev oidc: list users", "err", err)
		p.message(w, http.StatusInternalServerError, "The users could not be listed: see the server's log.")
		return
	}
	p.setPageHeaders(w)
	pages.ExecuteTemplate(w, "login", loginData{Style: pageStyle, ClientID: a.clientID,
		Action: p.path + "/" + pathLogin, ID: a.id, Users: users})
}

// login signs the chosen user in to the auth request in the form, then sends the browser back
// through zitadel's callback, which redirects to the client with a code.
//
// The auth request id is the form's only state, and it is a secret of the browser that started
// the request, so a cross-site form cannot name one; fetch metadata refuses cross-site posts
// anyway.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	if !p.sameOrigin(r) {
		p.log.WarnContext(r.Context(), "dev oidc: cross-site login refused", "origin", r.Header.Get("Origin"))
		p.message(w, http.StatusForbidden, "This form may only be posted from its own page.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	id, sub := r.PostFormValue("id"), r.PostFormValue("sub")
	if _, ok := p.storage.pendingAuthRequest(id); !ok {
		p.message(w, http.StatusBadRequest, msgUnknownRequest)
		return
	}
	users, err := p.storage.users.DevUsers(r.Context(), store.DevUserFilter{Sub: sub, Limit: 1})
	if err != nil {
		p.log.ErrorContext(r.Context(), "dev oidc: find user", "err", err)
		p.message(w, http.StatusInternalServerError, "The user could not be read: see the server's log.")
		return
	}
	if len(users) != 1 || sub == "" {
		p.message(w, http.StatusBadRequest, "This user is unknown or inactive: go back and pick another.")
		return
	}
	if !p.storage.completeAuthRequest(id, users[0]) {
		p.message(w, http.StatusBadRequest, msgUnknownRequest)
		return
	}
	p.log.InfoContext(r.Context(), "dev oidc: signed in", "user_id", users[0].ID)
	http.Redirect(w, r, p.issuer+"/"+pathAuthorize+"/callback?id="+url.QueryEscape(id), http.StatusSeeOther)
}

// sameOrigin reports whether a browser's request comes from the provider's own pages. Fetch
// metadata and Origin are absent from older browsers and from non-browser clients.
func (p *Provider) sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" {
		return false
	}
	origin := r.Header.Get("Origin")
	// Every page here has Referrer-Policy: no-referrer, under which browsers send "Origin: null"
	// with a POST, even to the same origin (Fetch, "serializing a request origin"); Sec-Fetch-Site,
	// which a page cannot forge, then vouches for it.
	return origin == "" || origin == p.origin() || (origin == "null" && site == "same-origin")
}

// origin is the issuer's scheme and host.
func (p *Provider) origin() string {
	u, _ := url.Parse(p.issuer) // checked by New
	return u.Scheme + "://" + u.Host
}

// loggedOut is where end session leads when the client names no post-logout URI.
func (p *Provider) loggedOut(w http.ResponseWriter, _ *http.Request) {
	p.message(w, http.StatusOK, "You are signed out of the development provider.")
}
