package graph_test

import (
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store/storetest"
)

// Who may introspect under each policy. __typename is not introspection: always allowed.
func TestIntrospectionPolicy(t *testing.T) {
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	staff := storetest.User(t, s, org, storetest.Staff()).ID
	user := storetest.User(t, s, org).ID
	formerStaff := storetest.User(t, s, org, storetest.Staff(), storetest.Inactive()).ID
	const (
		schema   = `{ __schema { queryType { name } } }`
		typ      = `{ __type(name: "Team") { name } }`
		fragment = `{ ...F } fragment F on Query { ... on Query { __schema { types { name } } } }`
		typename = `{ __typename config { __typename } }`
	)
	tests := []struct {
		name   string
		policy graph.Introspection
		as     *auth.Principal
		query  string
		want   string // extensions.code; "" to pass
	}{
		{"staff policy: staff", graph.IntrospectionStaff, session(staff), schema, ""},
		// Staff act through browser sessions only (store.Staff), introspection included.
		{"staff policy: staff's partner service", graph.IntrospectionStaff, bearer(staff, uuid.New()), typ, graph.CodeIntrospectionDisabled},
		{"staff policy: user", graph.IntrospectionStaff, session(user), schema, graph.CodeIntrospectionDisabled},
		{"staff policy: deactivated staff", graph.IntrospectionStaff, session(formerStaff), schema, graph.CodeIntrospectionDisabled},
		{"staff policy: anonymous", graph.IntrospectionStaff, nil, typ, graph.CodeIntrospectionDisabled},
		{"staff policy: in a fragment", graph.IntrospectionStaff, session(user), fragment, graph.CodeIntrospectionDisabled},
		{"staff policy: __typename", graph.IntrospectionStaff, nil, typename, ""},
		{"on: anonymous", graph.IntrospectionOn, nil, schema, ""},
		{"on: in a fragment", graph.IntrospectionOn, nil, fragment, ""},
		{"off: staff", graph.IntrospectionOff, session(staff), schema, graph.CodeIntrospectionDisabled},
		{"off: __typename", graph.IntrospectionOff, nil, typename, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := graph.NewHandler(s, graph.Options{Settings: allFeatures, Introspection: tt.policy})
			r := serve(t, h, httpReq{method: "POST", accept: mediaGQL, contentType: mediaJSON, as: tt.as, body: jsonBody(t, tt.query, nil)})
			if r.Code() != tt.want {
				t.Fatalf("code = %q, want %q (errors: %+v)", r.Code(), tt.want, r.Errors)
			}
			if tt.want != "" && r.Status != 400 {
				t.Errorf("refused introspection: status %d, want 400 with graphql-response+json", r.Status)
			}
		})
	}
}

// The staff lookup runs only for operations that introspect: other operations cost no statement
// for it.
func TestIntrospectionLookupOnlyWhenIntrospecting(t *testing.T) {
	counter := &statementCounter{}
	s := storetest.OpenFresh(t, counter)
	staff := storetest.User(t, s, storetest.Organization(t, s), storetest.Staff()).ID
	h := graph.NewHandler(s, graph.Options{Settings: allFeatures})
	for _, tt := range []struct {
		query string
		want  int64
	}{
		{`{ config { release } __typename }`, 0},
		{`{ __schema { queryType { name } } }`, 1},
	} {
		counter.n.Store(0)
		r := serve(t, h, httpReq{method: "POST", contentType: mediaJSON, as: session(staff), body: jsonBody(t, tt.query, nil)})
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", tt.query, r.Errors)
		}
		if got := counter.n.Load(); got != tt.want {
			t.Errorf("%s as staff: %d statements, want %d", tt.query, got, tt.want)
		}
	}
}

// ofTypes nests ofType n times under a field's type in __type.
func ofTypes(n int) string {
	return `{ __type(name: "Query") { fields { type { ` + strings.Repeat("ofType { ", n) + "name" + strings.Repeat(" }", n) + " } } } }"
}

// Introspection has a depth limit of its own: the query GraphiQL sends passes, a deeper
// ofType chain is refused before anything runs, however introspection is allowed.
func TestIntrospectionDepth(t *testing.T) {
	s := storetest.Open(t)
	graphiql, err := os.ReadFile("testdata/graphiql-introspection.graphql")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		limits graph.Limits
		query  string
		want   string // extensions.code; "" to pass
	}{
		{"GraphiQL's introspection query", graph.Limits{}, string(graphiql), ""},
		{"ofType 16 deep: 20 in all", graph.Limits{}, ofTypes(16), ""},
		{"ofType 17 deep", graph.Limits{}, ofTypes(17), graph.CodeQueryTooDeep},
		{"ofType 50 deep", graph.Limits{}, ofTypes(50), graph.CodeQueryTooDeep},
		{"through fragments", graph.Limits{}, `{ ...Q } fragment Q on Query { __type(name: "Query") { ...T } } fragment T on __Type { fields { type { ` +
			strings.Repeat("ofType { ", 30) + "name" + strings.Repeat(" }", 30) + " } } }", graph.CodeQueryTooDeep},
		{"configured", graph.Limits{MaxIntrospectionDepth: 3}, `{ __type(name: "Query") { fields { type { name } } } }`, graph.CodeQueryTooDeep},
		{"aliases inside count", graph.Limits{MaxAliases: 2}, `{ __schema { a: types { name } b: types { name } c: types { name } } }`, graph.CodeTooManyAliases},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := graph.NewHandler(s, graph.Options{Settings: allFeatures, Introspection: graph.IntrospectionOn, Limits: tt.limits})
			r := serve(t, h, httpReq{method: "POST", accept: mediaGQL, contentType: mediaJSON, body: jsonBody(t, tt.query, nil)})
			if r.Code() != tt.want {
				t.Fatalf("code = %q, want %q (errors: %+v)", r.Code(), tt.want, r.Errors)
			}
			if data := string(r.Raw["data"]); tt.want == "" && (data == "" || data == "null" || len(r.Errors) > 0) {
				t.Errorf("data %.200s, errors %+v; want the answer", data, r.Errors)
			}
		})
	}
}
