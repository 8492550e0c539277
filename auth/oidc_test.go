package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// signIn is a whole server as make run wires it, on a loopback httptest server: the
// development provider at /dev-oidc, the login handlers, sessions and the GraphQL API.
type signIn struct {
	url   string
	s     *store.Store
	dev   *devop.Provider
	login *auth.Login
	logs  *logBuffer
}

func newSignIn(t *testing.T, tweak func(*auth.LoginConfig)) *signIn {
	t.Helper()
	s := storetest.Open(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	dev, err := devop.New(t.Context(), devop.Options{
		Issuer: base + devop.Path, Users: s,
		RPClient:    devop.Client{ID: "people", RedirectURIs: []string{base + "/auth/callback"}, PostLogoutRedirectURIs: []string{base + "/auth/logout/callback"}},
		Development: true, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	sessions := auth.NewSessions(s, auth.SessionOptions{PublicOrigin: base}, log)
	rc := dev.RPClient()
	cfg := auth.LoginConfig{
		Issuer: dev.Issuer(), ClientID: rc.ID, ClientSecret: rc.Secret, PublicURL: base,
		Scopes:     []string{"openid", "email", "given_name", "usual_name", "siret"},
		NameFields: []string{"given_name", "usual_name"}, RegistrationIDClaim: "siret",
		SecretKey:    []byte(strings.Repeat("k", 32)),
		Provisioning: store.LoginOptions{FallbackToEmail: true, CreateUser: true, RegistrationIDPattern: store.SIRETPattern},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	login, err := auth.NewLogin(cfg, s, sessions, log)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(devop.Path+"/", dev.Handler())
	login.Mount(mux)
	api := graph.NewHandler(s, graph.Options{Settings: graph.Settings{Features: graph.Features{TeamsDisplay: true}}})
	mux.Handle("/graphql", sessions.CORS(sessions.Middleware(sessions.CSRF(api))))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "landed on "+r.URL.RequestURI()) })
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)
	return &signIn{url: base, s: s, dev: dev, login: login, logs: logs}
}

// browser is a cookie-keeping client that sends Origin like a browser does on POST.
func (si *signIn) browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

var formID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// logIn runs the whole flow as the user with sub and returns the page where it landed.
func (si *signIn) logIn(t *testing.T, c *http.Client, sub, next string) (int, string) {
	t.Helper()
	resp, err := c.Get(si.url + "/auth/login?next=" + url.QueryEscape(next))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formID.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no login page (status %d): %s", resp.StatusCode, body)
	}
	return si.pick(t, c, string(m[1]), sub)
}

func (si *signIn) pick(t *testing.T, c *http.Client, id, sub string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, si.url+devop.Path+"/login", strings.NewReader(url.Values{"id": {id}, "sub": {sub}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", si.url)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// me runs { me { email name organization { name } } } with the client's cookie.
func (si *signIn) me(t *testing.T, c *http.Client) (email, name, org, code string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, si.url+"/graphql", strings.NewReader(`{"query":"{ me { email name organization { name } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", si.url)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Me *struct {
				Email, Name  string
				Organization *struct{ Name string }
			}
		}
		Errors []struct {
			Extensions struct{ Code string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) > 0 {
		return "", "", "", out.Errors[0].Extensions.Code
	}
	if out.Data.Me == nil {
		t.Fatalf("no me and no error (status %d)", resp.StatusCode)
	}
	if out.Data.Me.Organization != nil {
		org = out.Data.Me.Organization.Name
	}
	return out.Data.Me.Email, out.Data.Me.Name, org, ""
}

func TestLoginThroughDevelopmentProvider(t *testing.T) {
	si := newSignIn(t, nil)
	org := storetest.Organization(t, si.s)
	u := storetest.User(t, si.s, org, storetest.WithName("Élodie Durand"))
	c := si.browser(t)
	if _, _, _, code := si.me(t, c); code != "UNAUTHENTICATED" {
		t.Fatalf("before login: code %q, want UNAUTHENTICATED", code)
	}
	status, page := si.logIn(t, c, u.Sub, "/teams?x=1")
	if status != http.StatusOK || page != "landed on /teams?x=1" {
		t.Fatalf("login landed with %d on %q, want the next path", status, page)
	}
	email, name, orgName, code := si.me(t, c)
	if code != "" || email != u.Email || name != "Élodie Durand" || orgName == "" {
		t.Errorf("me = %q %q %q (code %q), want the user of the login", email, name, orgName, code)
	}
	var lastLogin bool
	if err := si.s.DB().QueryRowContext(t.Context(), "SELECT last_login_at IS NOT NULL FROM users WHERE id = ?", u.ID).Scan(&lastLogin); err != nil || !lastLogin {
		t.Errorf("last_login_at not set (%v)", err)
	}
	if strings.Contains(si.logs.String(), "eyJ") {
		t.Errorf("a token reached the logs:\n%s", si.logs.String())
	}
}

// A first login provisions the user: organization from the SIRET claim, profile contact.
// A first login through the development provider finds a user the directory knows by email
// (the provider's subject is new to it) and links the identity to them.
func TestFirstDevLoginLinksUserByEmail(t *testing.T) {
	si := newSignIn(t, nil)
	u := storetest.User(t, si.s, storetest.Organization(t, si.s))
	c := si.browser(t)
	if status, _ := si.logIn(t, c, u.Sub, "/"); status != http.StatusOK {
		t.Fatalf("login status %d", status)
	}
	var linked int
	if err := si.s.DB().QueryRowContext(t.Context(), "SELECT count(*) FROM user_identities WHERE user_id = ? AND issuer = ?", u.ID, si.dev.Issuer()).Scan(&linked); err != nil || linked != 1 {
		t.Errorf("identity links = %d (%v), want 1", linked, err)
	}
}

// The first login of a person the directory does not know creates their user, with the
// identity, the organization their SIRET names and their profile contact.
func TestFirstLoginCreatesUser(t *testing.T) {
	r := newLoginRig(t, nil)
	org := storetest.Organization(t, r.s)
	siret := freshSIRET()
	storetest.MustExec(t, r.s.DB(), "INSERT INTO organization_registration_ids (organization_id, registration_id) VALUES (?, ?)", org, siret)
	sub, email := person()
	if n := scalar[int](t, r.s, "SELECT count(*) FROM users WHERE lower(email) = lower(?)", email); n != 0 {
		t.Fatalf("%d users with the email before the first login", n)
	}
	c := r.browser(t)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email, "siret": siret, "given_name": "Noémie", "usual_name": "Durand"}}))
	me := r.me(t, c)
	if me.Me.Email != email || me.Me.Name != "Noémie Durand" {
		t.Fatalf("me = %+v, want the new user", me.Me)
	}
	var user struct {
		ID     uuid.UUID
		OrgID  uuid.UUID
		Active bool
	}
	if err := r.s.DB().QueryRowContext(t.Context(), "SELECT id, organization_id, is_active FROM users WHERE lower(email) = lower(?)", email).
		Scan(&user.ID, &user.OrgID, &user.Active); err != nil {
		t.Fatalf("the new user: %v", err)
	}
	if user.ID.String() != me.Me.ID || user.OrgID != org || !user.Active {
		t.Errorf("user %+v, want %s, active, in the organization of SIRET %s (%s)", user, me.Me.ID, siret, org)
	}
	if n := scalar[int](t, r.s, "SELECT count(*) FROM user_identities WHERE user_id = ? AND issuer = ? AND subject = ? AND audience = ''", user.ID, r.op.issuer(), sub); n != 1 {
		t.Errorf("%d identities for the provider's subject, want 1", n)
	}
	if n := scalar[int](t, r.s, `SELECT count(*) FROM contacts WHERE owner_id = ? AND user_id = ? AND full_name = 'Noémie Durand'
		AND data->'emails'->0->>'value' = ?`, user.ID, user.ID, email); n != 1 {
		t.Errorf("%d profile contacts with the user's name and email, want 1", n)
	}
}

// A staff user made by create-staff signs in through the development provider as anyone does
// (make run): the provider's subject is the user's sub, which no identity holds, so the login
// finds them by email and links it.
func TestLoginThroughDevelopmentProviderStaffCreatedAhead(t *testing.T) {
	si := newSignIn(t, nil)
	email := "staff-" + storetest.Unique() + "@example.test"
	u, _, err := si.s.CreateStaff(t.Context(), store.StaffRequest{Email: email, Name: "Sam Staff"}, store.DefaultLoginOptions())
	if err != nil {
		t.Fatal(err)
	}
	c := si.browser(t)
	if status, _ := si.logIn(t, c, u.Sub, "/"); status != http.StatusOK {
		t.Fatalf("login status %d", status)
	}
	if got, name, _, code := si.me(t, c); code != "" || got != email || name != "Sam Staff" {
		t.Errorf("me = %q %q (code %q), want the staff user", got, name, code)
	}
	var linked int
	if err := si.s.DB().QueryRowContext(t.Context(), "SELECT count(*) FROM user_identities WHERE user_id = ? AND issuer = ?", u.ID, si.dev.Issuer()).Scan(&linked); err != nil || linked != 1 {
		t.Errorf("identity links = %d (%v), want 1", linked, err)
	}
	if got, err := si.s.UserByID(t.Context(), u.ID); err != nil || !got.IsStaff {
		t.Errorf("after the login: %+v, %v; want staff", got, err)
	}
}

func TestLoginRefusals(t *testing.T) {
	si := newSignIn(t, nil)
	org := storetest.Organization(t, si.s)
	u := storetest.User(t, si.s, org)

	t.Run("tampered state", func(t *testing.T) {
		c := si.browser(t)
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == "/auth/callback" {
				q := req.URL.Query()
				q.Set("state", q.Get("state")+"x")
				req.URL.RawQuery = q.Encode()
			}
			return nil
		}
		status, page := si.logIn(t, c, u.Sub, "/")
		if status != http.StatusUnauthorized || !strings.Contains(page, "invalid_state") {
			t.Errorf("tampered state: %d %q", status, page)
		}
		if _, _, _, code := si.me(t, c); code != "UNAUTHENTICATED" {
			t.Errorf("a session was opened: code %q", code)
		}
	})

	t.Run("replayed code", func(t *testing.T) {
		c := si.browser(t)
		var callback string
		var loginCookie *http.Cookie
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == "/auth/callback" {
				callback = req.URL.String()
				for _, ck := range c.Jar.Cookies(req.URL) {
					if ck.Name == "people_login" {
						loginCookie = ck
					}
				}
			}
			return nil
		}
		if status, _ := si.logIn(t, c, u.Sub, "/"); status != http.StatusOK || callback == "" || loginCookie == nil {
			t.Fatalf("first login: %d, callback %q", status, callback)
		}
		// Same code, same (still valid) login state, in a fresh browser: the provider refuses the code.
		req, _ := http.NewRequest(http.MethodGet, callback, nil)
		req.AddCookie(loginCookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_token") {
			t.Errorf("replayed code: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("inactive user refused and live session cut", func(t *testing.T) {
		v := storetest.User(t, si.s, org)
		c := si.browser(t)
		if status, _ := si.logIn(t, c, v.Sub, "/"); status != http.StatusOK {
			t.Fatalf("login %d", status)
		}
		storetest.MustExec(t, si.s.DB(), "UPDATE users SET is_active = false WHERE id = ?", v.ID)
		if _, _, _, code := si.me(t, c); code != "UNAUTHENTICATED" {
			t.Errorf("deactivated user's session still works: code %q", code)
		}
	})
}

func TestLoginNextFallsBackToRoot(t *testing.T) {
	si := newSignIn(t, nil)
	u := storetest.User(t, si.s, storetest.Organization(t, si.s))
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "evil", "/%0d%0aSet-Cookie:x=1"} {
		c := si.browser(t)
		_, page := si.logIn(t, c, u.Sub, next)
		if page != "landed on /" && !(next == "/%0d%0aSet-Cookie:x=1" && strings.HasPrefix(page, "landed on /")) {
			t.Errorf("next=%q landed on %q, want /", next, page)
		}
	}
}

func TestLogout(t *testing.T) {
	si := newSignIn(t, nil)
	u := storetest.User(t, si.s, storetest.Organization(t, si.s))
	c := si.browser(t)
	if status, _ := si.logIn(t, c, u.Sub, "/"); status != http.StatusOK {
		t.Fatalf("login %d", status)
	}
	// Keep the session cookie to try it again after logout.
	old := c.Jar.Cookies(mustURL(t, si.url+"/graphql"))

	// Cross-site logout is refused.
	req, _ := http.NewRequest(http.MethodPost, si.url+"/auth/logout", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site logout: %d, want 403", resp.StatusCode)
	}
	if _, _, _, code := si.me(t, c); code != "" {
		t.Fatalf("cross-site logout ended the session: %q", code)
	}

	req, _ = http.NewRequest(http.MethodPost, si.url+"/auth/logout", nil)
	req.Header.Set("Origin", si.url)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`url=([^"]+)"`).FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(string(m[1]), "id_token_hint") {
		t.Fatalf("logout answered %d %s, want a page leading to the provider's end session", resp.StatusCode, body)
	}
	endSession := strings.ReplaceAll(string(m[1]), "&amp;", "&")
	resp, err = c.Get(endSession) // provider → /auth/logout/callback → LOGOUT_REDIRECT_URL
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "landed on /" {
		t.Errorf("after the provider's logout: %d %q", resp.StatusCode, body)
	}
	fresh := &http.Client{}
	fresh.Jar, _ = cookiejar.New(nil)
	fresh.Jar.SetCookies(mustURL(t, si.url+"/graphql"), old)
	if _, _, _, code := si.me(t, fresh); code != "UNAUTHENTICATED" {
		t.Errorf("the old cookie still works after logout: code %q", code)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var _ = context.Background
