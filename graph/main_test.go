package graph_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// allFeatures is the default configuration: every FEATURE_* switch on.
var allFeatures = graph.Settings{
	Features: graph.Features{ContactsDisplay: true, ContactsCreate: true, TeamsDisplay: true, TeamsCreate: true},
	Release:  "test", Commit: "abc123",
}

// api runs operations through the real GraphQL handler over the real store.
type api struct {
	tb testing.TB
	c  *client.Client
	s  *store.Store
}

func newAPI(tb testing.TB, s *store.Store, settings graph.Settings) *api {
	h := graph.NewHandler(s, graph.Options{Settings: settings, LoaderWait: 5 * time.Millisecond})
	return &api{tb: tb, c: client.New(h), s: s}
}

// gqlError is one entry of a response's errors.
type gqlError struct {
	Message    string `json:"message"`
	Path       []any  `json:"path"`
	Extensions struct {
		Code  string `json:"code"`
		Field string `json:"field"`
	} `json:"extensions"`
}

// result is a decoded GraphQL response.
type result struct {
	Data   json.RawMessage
	Errors []gqlError
}

// Code is the first error's extensions.code, or "" when the operation succeeded.
func (r result) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Extensions.Code
}

// as returns a principal for a user's browser session.
func session(user uuid.UUID) *auth.Principal {
	return &auth.Principal{UserID: user, Method: auth.MethodSession}
}

// bearer returns a principal for a partner service's token on a user's behalf.
func bearer(user, sp uuid.UUID) *auth.Principal {
	return &auth.Principal{UserID: user, Method: auth.MethodBearer, Audience: "sp", ServiceProviderID: sp, Scopes: []string{"groups"}}
}

// do runs query as p (nil: anonymous) and decodes the response; data is unmarshalled into out
// when out is not nil and the response has data.
func (a *api) do(p *auth.Principal, query string, vars map[string]any, out any) result {
	a.tb.Helper()
	opts := []client.Option{func(bd *client.Request) {
		if p != nil {
			bd.HTTP = bd.HTTP.WithContext(auth.WithPrincipal(bd.HTTP.Context(), *p))
		}
	}}
	for k, v := range vars {
		opts = append(opts, client.Var(k, v))
	}
	resp, err := a.c.RawPost(query, opts...)
	if err != nil {
		a.tb.Fatalf("post: %v", err)
	}
	var r result
	if len(resp.Errors) > 0 {
		if err := json.Unmarshal(resp.Errors, &r.Errors); err != nil {
			a.tb.Fatalf("decode errors %s: %v", resp.Errors, err)
		}
	}
	if resp.Data != nil {
		b, err := json.Marshal(resp.Data)
		if err != nil {
			a.tb.Fatal(err)
		}
		r.Data = b
		if out != nil && string(b) != "null" {
			if err := json.Unmarshal(b, out); err != nil {
				a.tb.Fatalf("decode data %s: %v", b, err)
			}
		}
	}
	return r
}

// mustDo is do that fails the test on any GraphQL error.
func (a *api) mustDo(p *auth.Principal, query string, vars map[string]any, out any) {
	a.tb.Helper()
	if r := a.do(p, query, vars, out); len(r.Errors) > 0 {
		a.tb.Fatalf("unexpected errors: %+v", r.Errors)
	}
}

// statementCounter is a pgx query tracer counting the SQL statements a store runs, through bun
// or not: it sits on the connections, under both.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {
	c.n.Add(1)
}
