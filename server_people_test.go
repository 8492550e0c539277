package main

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/store/storetest"
)

// TestPeopleEnvironment starts the whole server with nothing but a People deployment's
// environment, as its Helm values write it (People's names, Python literals and booleans, its
// DB_* variables; LISTEN_ADDR aside, which is the pod's business), behind a TLS-terminating
// proxy as an ingress would be, against an OpenID provider where People's redirect URIs are
// registered. A user logs in through People's URLs, uses the session on /graphql, and logs
// out through People's GET logout; People's health and config URLs answer People's shapes,
// and the People settings that mean nothing here are named in one log line.
func TestPeopleEnvironment(t *testing.T) {
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	user := storetest.User(t, s, org)

	// The ingress: its address is the public origin, known before the server starts.
	ingress := httptest.NewUnstartedServer(nil)
	public := "https://" + ingress.Listener.Addr().String()

	// The provider, with People's redirect URIs registered, as ProConnect has them.
	opSrv := httptest.NewUnstartedServer(nil)
	op, err := devop.New(t.Context(), devop.Options{
		Issuer: "http://" + opSrv.Listener.Addr().String() + devop.Path, Users: s,
		RPClient: devop.Client{ID: "people-desk", RedirectURIs: []string{public + "/api/v1.0/callback/"},
			PostLogoutRedirectURIs: []string{public + "/api/v1.0/logout-callback/"}},
		PartnerClients: []devop.Client{{ID: "docs"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	opMux := http.NewServeMux()
	opMux.Handle(devop.Path+"/", op.Handler())
	opSrv.Config.Handler = opMux
	opSrv.Start()
	t.Cleanup(opSrv.Close)
	ep := op.Endpoints()

	db, err := url.Parse(storetest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	password, _ := db.User.Password()
	vars := map[string]string{
		"LISTEN_ADDR": "127.0.0.1:0",

		"DJANGO_SETTINGS_MODULE": "people.settings", "DJANGO_CONFIGURATION": "Production",
		"DJANGO_SECRET_KEY":    "ThisIsAnExampleKeyForDevPurposeOnly-ButLongEnough50",
		"DJANGO_ALLOWED_HOSTS": "127.0.0.1", "DJANGO_CSRF_TRUSTED_ORIGINS": public,
		"DJANGO_CORS_ALLOWED_ORIGINS": "https://desk.example.org",
		"DB_HOST":                     db.Hostname(), "DB_PORT": db.Port(), "DB_NAME": strings.TrimPrefix(db.Path, "/"),
		"DB_USER": db.User.Username(), "DB_PASSWORD": password,
		"DJANGO_EMAIL_HOST": "127.0.0.1", "DJANGO_EMAIL_PORT": "1025", "DJANGO_EMAIL_USE_TLS": "False",
		"DJANGO_EMAIL_FROM": "no-reply@desk.example.org",
		"SENTRY_DSN":        "https://key@sentry.example.org/42", "DJANGO_CELERY_BROKER_URL": "redis://redis:6379/0",
		"FEATURE_MAILBOXES_CREATE": "False", "FEATURE_TEAMS_CREATE": "True",

		"OIDC_OP_URL": op.Issuer(), "OIDC_OP_AUTHORIZATION_ENDPOINT": ep.Authorization, "OIDC_OP_TOKEN_ENDPOINT": ep.Token,
		"OIDC_OP_USER_ENDPOINT": ep.Userinfo, "OIDC_OP_JWKS_ENDPOINT": ep.JWKS, "OIDC_OP_LOGOUT_ENDPOINT": ep.EndSession,
		"OIDC_RP_CLIENT_ID": "people-desk", "OIDC_RP_CLIENT_SECRET": op.RPClient().Secret, "OIDC_RP_SIGN_ALGO": "RS256",
		"OIDC_RP_SCOPES":                 "openid email given_name usual_name siret",
		"OIDC_AUTH_REQUEST_EXTRA_PARAMS": "{'acr_values': 'eidas1'}",
		"OIDC_USERINFO_FULLNAME_FIELDS":  "given_name,usual_name",
		"LOGIN_REDIRECT_URL":             public + "/", "LOGIN_REDIRECT_URL_FAILURE": public + "/", "LOGOUT_REDIRECT_URL": public + "/",
		"ALLOW_LOGOUT_GET_METHOD": "True", "DJANGO_OIDC_CREATE_USER": "True",
		"OIDC_OP_INTROSPECTION_ENDPOINT": ep.Introspection, "OIDC_RS_CLIENT_ID": "people-desk", "OIDC_RS_CLIENT_SECRET": op.RPClient().Secret,
		"OIDC_RS_BACKEND_CLASS":                   "lasuite.oidc_resource_server.backend.ResourceServerBackend",
		"ORGANIZATION_REGISTRATION_ID_VALIDATORS": `[{"NAME": "django.core.validators.RegexValidator", "OPTIONS": {"regex": "^[0-9]{14}$"}}]`,
	}
	logs := &lockedBuffer{}
	addr := runWithEnv(t, vars, logs)
	backend, _ := url.Parse("http://" + addr)
	ingress.Config.Handler = httputil.NewSingleHostReverseProxy(backend)
	ingress.StartTLS()
	t.Cleanup(ingress.Close)

	var ignored []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"msg":"people settings ignored"`) {
			var rec struct{ Names []string }
			json.Unmarshal([]byte(line), &rec)
			ignored = append(ignored, strings.Join(rec.Names, ","))
		}
	}
	if want := "DJANGO_SETTINGS_MODULE,DJANGO_CONFIGURATION,DJANGO_CELERY_BROKER_URL,FEATURE_MAILBOXES_CREATE,SENTRY_DSN"; !slices.Equal(ignored, []string{want}) {
		t.Errorf("ignored settings logged as %q, want one line naming %s", ignored, want)
	}

	jar, _ := cookiejar.New(nil)
	browser := ingress.Client()
	browser.Jar = jar
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	step := func(method, u string, form url.Values, header ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	location := func(resp *http.Response, body string) string {
		t.Helper()
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			t.Fatalf("%s %s: %d (%s), want a redirect", resp.Request.Method, resp.Request.URL, resp.StatusCode, body)
		}
		return loc
	}

	// Login: People's authenticate → the provider's login page → People's callback.
	authz := location(step("GET", public+"/api/v1.0/authenticate/", nil))
	if q := must(url.Parse(authz)).Query(); q.Get("redirect_uri") != public+"/api/v1.0/callback/" || q.Get("acr_values") != "eidas1" {
		t.Errorf("authorization request %s, want People's callback and acr_values=eidas1", authz)
	}
	loginPage := location(step("GET", authz, nil))
	_, page := step("GET", loginPage, nil)
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(page)
	if id == nil {
		t.Fatalf("login page without a request id: %s", page)
	}
	back := location(step("POST", op.Issuer()+"/login", url.Values{"id": {id[1]}, "sub": {user.Sub}},
		"Origin", opSrv.URL, "Sec-Fetch-Site", "same-origin"))
	callback := location(step("GET", back, nil))
	if !strings.HasPrefix(callback, public+"/api/v1.0/callback/?") {
		t.Fatalf("the provider sent the browser to %s, want People's callback", callback)
	}
	if landed := location(step("GET", callback, nil)); landed != public+"/" {
		t.Fatalf("the login landed on %s, want LOGIN_REDIRECT_URL %s/", landed, public)
	}

	// The session works on the API.
	query := func() string {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "POST", public+"/graphql", strings.NewReader(`{"query":"{ me { email } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", public)
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := query(); !strings.Contains(got, `"email":"`+user.Email+`"`) {
		t.Fatalf("me after login: %s, want %s", got, user.Email)
	}

	// Logout by GET, as a People frontend does: the browser leaves for the provider, with
	// People's post-logout URI, and the session is over.
	resp, body := step("GET", public+"/api/v1.0/logout/", nil, "Sec-Fetch-Site", "same-origin")
	m := regexp.MustCompile(`url=([^"]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET logout: %d %s, want a page leaving for the provider", resp.StatusCode, body)
	}
	if end := must(url.Parse(html.UnescapeString(m[1]))); !strings.HasPrefix(end.String(), ep.EndSession) ||
		end.Query().Get("post_logout_redirect_uri") != public+"/api/v1.0/logout-callback/" {
		t.Errorf("logout leaves for %s, want the provider's end_session with People's post-logout URI", end)
	}
	if got := query(); !strings.Contains(got, "UNAUTHENTICATED") {
		t.Errorf("me after logout: %s, want UNAUTHENTICATED", got)
	}

	// Health, JWKS and config at People's paths.
	for _, tt := range []struct{ path, body string }{
		{"/__lbheartbeat__", ""}, {"/__lbheartbeat__/", ""},
		{"/__heartbeat__", `{"status":"ok"}` + "\n"}, {"/__heartbeat__/", `{"status":"ok"}` + "\n"},
	} {
		if resp, body := step("GET", public+tt.path, nil); resp.StatusCode != http.StatusOK || body != tt.body {
			t.Errorf("%s: %d %q, want 200 %q", tt.path, resp.StatusCode, body, tt.body)
		}
	}
	_, jwks := step("GET", public+"/jwks", nil)
	if resp, body := step("GET", public+"/resource-server/v1.0/jwks", nil); body != jwks {
		t.Errorf("/resource-server/v1.0/jwks: %d %s, want /jwks's answer %s", resp.StatusCode, body, jwks)
	}
	resp, body = step("GET", public+"/api/v1.0/config/", nil)
	var cfg map[string]any
	if err := json.Unmarshal([]byte(body), &cfg); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/api/v1.0/config/: %d %s", resp.StatusCode, body)
	}
	want := map[string]any{
		"LANGUAGES": []any{[]any{"en-us", "English"}, []any{"fr-fr", "Français"}},
		"FEATURES": map[string]any{"CONTACTS_CREATE": true, "CONTACTS_DISPLAY": true, "MAILBOXES_CREATE": false,
			"TEAMS_DISPLAY": true, "TEAMS_CREATE": true},
		"RELEASE": "NA", "COMMIT": "NA", "CRISP_WEBSITE_ID": nil,
	}
	if got, _ := json.Marshal(cfg); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("/api/v1.0/config/ = %s, want %s", got, must(json.Marshal(want)))
	}
}

// TestPeopleLogoutGetOff: without ALLOW_LOGOUT_GET_METHOD, People's logout answers GET with
// 405, as People's; its login sends People's callback, which the development provider
// registers as well.
func TestPeopleLogoutGetOff(t *testing.T) {
	addr := freeLoopbackAddr(t)
	base := startServer(t, storetest.URL(t), map[string]string{"ENVIRONMENT": "development", "ALLOW_LOGOUT_GET_METHOD": "false",
		"LISTEN_ADDR": addr, "PUBLIC_URL": "http://" + addr})
	if code, _ := get(t, base+"/api/v1.0/logout/"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/v1.0/logout/ = %d, want 405", code)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/api/v1.0/authenticate/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, err := resp.Location()
	if err != nil || u.Query().Get("redirect_uri") != base+"/api/v1.0/callback/" {
		t.Fatalf("login redirects to %v (%v), want People's callback as redirect_uri", u, err)
	}
	// The development provider accepts it: it answers its login page, not an error.
	resp, err = c.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("the development provider answered %d to People's redirect_uri, want 302 to its login page", resp.StatusCode)
	}
}

// runWithEnv runs the program with exactly vars until the test ends, its log in logs, and
// returns the address it listens on.
func runWithEnv(t *testing.T, vars map[string]string, logs io.Writer) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env(vars), logs, ready) }()
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run() after shutdown = %v", err)
			}
		})
		return addr
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start within 30s")
	}
	return ""
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
