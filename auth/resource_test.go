package auth_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// Helpers of the resource-server tests; their names start with rs so that they stay apart from
// the sign-in tests in this package.

// rsKeyPEM is one RSA key for the whole test binary: making one takes a while under -race.
var rsKeyPEM = sync.OnceValue(func() string { return rsNewKeyPEM() })

func rsNewKeyPEM() string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// rsEnv is an authorization server, and the resource server middleware in front of the real
// GraphQL handler over the real store, with their logs.
type rsEnv struct {
	as   *oidctest.Server
	s    *store.Store
	h    http.Handler // the middleware, then GraphQL
	api  http.Handler // GraphQL alone
	rs   *auth.ResourceServer
	cfg  auth.ResourceServerConfig
	logs *logBuffer
}

// newRSEnv starts an environment for backend (auth.BackendJSON or auth.BackendJWT); edit may
// change the resource server's configuration before it is built.
func newRSEnv(tb testing.TB, backend string, edit ...func(*auth.ResourceServerConfig)) *rsEnv {
	tb.Helper()
	keys, err := auth.ParseDecryptionKeys(rsKeyPEM(), "RSA-OAEP")
	if err != nil {
		tb.Fatal(err)
	}
	pub := keys.PublicKeys().Keys[0]
	as := oidctest.NewServer(tb, oidctest.Options{ClientID: "people-" + storetest.Unique(), EncryptionKey: &pub})
	cfg := auth.ResourceServerConfig{
		Issuer: as.URL, IntrospectionURL: as.IntrospectionURL(), JWKSURL: as.JWKSURL(),
		ClientID: as.ClientID, ClientSecret: as.ClientSecret, Backend: backend, DecryptionKeys: keys,
		FallbackToEmail: true, Timeout: 2 * time.Second,
	}
	for _, e := range edit {
		e(&cfg)
	}
	return newRSEnvWith(tb, as, cfg)
}

func newRSEnvWith(tb testing.TB, as *oidctest.Server, cfg auth.ResourceServerConfig) *rsEnv {
	tb.Helper()
	e := &rsEnv{as: as, s: storetest.Open(tb), cfg: cfg, logs: &logBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	if e.rs, err = auth.NewResourceServer(cfg, e.s, log); err != nil {
		tb.Fatalf("NewResourceServer: %v", err)
	}
	api := graph.NewHandler(e.s, graph.Options{Log: log, LoaderWait: time.Millisecond, Settings: graph.Settings{
		Features: graph.Features{ContactsDisplay: true, ContactsCreate: true, TeamsDisplay: true, TeamsCreate: true},
	}})
	e.api, e.h = api, e.rs.Middleware(api)
	return e
}

// user creates a user in a fresh organization, known at the authorization server by a public
// subject, as a browser login leaves them.
func (e *rsEnv) user(tb testing.TB, opts ...storetest.UserOpt) (store.User, string) {
	tb.Helper()
	u := storetest.User(tb, e.s, storetest.Organization(tb, e.s), opts...)
	sub := "pub-" + storetest.Unique()
	e.link(tb, u.ID, sub, "")
	return u, sub
}

// link records that the authorization server knows user by sub (for audience; "" is public).
func (e *rsEnv) link(tb testing.TB, user uuid.UUID, sub, audience string) {
	tb.Helper()
	storetest.MustExec(tb, e.s.DB(), "INSERT INTO user_identities (user_id, issuer, subject, audience) VALUES (?, ?, ?, ?)",
		user, e.as.URL, sub, audience)
}

// rsAnswer is an HTTP answer of the GraphQL endpoint.
type rsAnswer struct {
	status int
	header http.Header
	body   string
	Data   json.RawMessage
	Errors []struct {
		Message    string
		Extensions struct{ Code string }
	}
}

func (a rsAnswer) code() string {
	if len(a.Errors) == 0 {
		return ""
	}
	return a.Errors[0].Extensions.Code
}

// do posts a GraphQL operation with the Authorization header authz ("" sends none).
func (e *rsEnv) do(tb testing.TB, authz, query string, vars map[string]any) rsAnswer {
	tb.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		tb.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	a := rsAnswer{status: w.Code, header: w.Header(), body: w.Body.String()}
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		tb.Fatalf("answer %d is not JSON: %q", w.Code, a.body)
	}
	return a
}

// me returns the id of the caller of token, or fails the test with the answer.
func (e *rsEnv) me(tb testing.TB, token string) string {
	tb.Helper()
	a := e.do(tb, "Bearer "+token, `{ me { id } }`, nil)
	var out struct{ Me struct{ ID string } }
	if a.status != http.StatusOK || len(a.Errors) > 0 || json.Unmarshal(a.Data, &out) != nil {
		tb.Fatalf("me: %d %s", a.status, strings.TrimSpace(a.body))
	}
	return out.Me.ID
}
