package graph_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store/storetest"
)

// rootFields returns the Query and Mutation fields of the served schema, introspection aside.
func rootFields(t *testing.T) []*ast.FieldDefinition {
	t.Helper()
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	var fields []*ast.FieldDefinition
	for _, typ := range []*ast.Definition{schema.Query, schema.Mutation} {
		if typ == nil {
			t.Fatal("the schema has no Query or Mutation type")
		}
		for _, f := range typ.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				fields = append(fields, f)
			}
		}
	}
	return fields
}

// authMethods returns the methods an @auth directive accepts; nil without @auth.
func authMethods(f *ast.FieldDefinition) []string {
	d := f.Directives.ForName("auth")
	if d == nil {
		return nil
	}
	arg := d.Arguments.ForName("methods")
	if arg == nil || arg.Value == nil || arg.Value.Kind == ast.NullValue {
		return []string{"SESSION"} // the directive's default
	}
	var ms []string
	for _, c := range arg.Value.Children {
		ms = append(ms, c.Value.Raw)
	}
	return ms
}

// staffOnly reports whether a field's @auth directive says staff: true.
func staffOnly(f *ast.FieldDefinition) bool {
	d := f.Directives.ForName("auth")
	if d == nil {
		return false
	}
	arg := d.Arguments.ForName("staff")
	return arg != nil && arg.Value != nil && arg.Value.Raw == "true"
}

// TestStaffFields: the staff fields are exactly the admin* ones, none is open to a bearer
// token, and at run time every one refuses anyone but active staff in a browser session.
func TestStaffFields(t *testing.T) {
	var staff []string
	for _, f := range rootFields(t) {
		if staffOnly(f) != strings.HasPrefix(f.Name, "admin") {
			t.Errorf("%s: staff = %v; staff fields are the admin* ones, and only they", f.Name, staffOnly(f))
		}
		if staffOnly(f) {
			staff = append(staff, f.Name)
			if slices.Contains(authMethods(f), "BEARER") {
				t.Errorf("%s is a staff field open to bearer tokens", f.Name)
			}
		}
	}
	if len(staff) < 20 {
		t.Fatalf("found %d staff fields: the schema did not load as expected", len(staff))
	}

	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org := storetest.Organization(t, s)
	plain := storetest.User(t, s, org).ID
	staffUser := storetest.User(t, s, org, storetest.Staff()).ID
	formerStaff := storetest.User(t, s, org, storetest.Staff(), storetest.Inactive()).ID
	for _, field := range staff {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			q := rootOperations[field]
			for _, c := range []struct {
				who  string
				p    *auth.Principal
				code string
			}{
				{"anonymous", nil, "UNAUTHENTICATED"},
				{"a user who is not staff", session(plain), "FORBIDDEN"},
				{"a deactivated staff user", session(formerStaff), "FORBIDDEN"},
				{"a staff user's bearer token", bearer(staffUser, uuid.New()), "FORBIDDEN"},
			} {
				if r := a.do(c.p, q, nil, nil); r.Code() != c.code {
					t.Errorf("as %s: code = %q, want %q (errors: %+v)", c.who, r.Code(), c.code, r.Errors)
				}
			}
			// Staff get past the directive: what follows is the operation's own answer.
			if r := a.do(session(staffUser), q, nil, nil); r.Code() == "FORBIDDEN" || r.Code() == "UNAUTHENTICATED" {
				t.Errorf("as staff: code = %q (errors: %+v)", r.Code(), r.Errors)
			}
		})
	}
}

func TestAuthDirectiveOnEveryRootField(t *testing.T) {
	fields := rootFields(t)
	if len(fields) < 20 {
		t.Fatalf("found %d root fields: the schema did not load as expected", len(fields))
	}
	for _, f := range fields {
		hasAuth := f.Directives.ForName("auth") != nil
		if f.Name == "config" && hasAuth {
			t.Errorf("config carries @auth, but it is public")
		}
		if f.Name != "config" && !hasAuth {
			t.Errorf("%s has no @auth", f.Name)
		}
	}
}

func TestBearerFields(t *testing.T) {
	var got []string
	for _, f := range rootFields(t) {
		if slices.Contains(authMethods(f), "BEARER") {
			got = append(got, f.Name)
		}
	}
	slices.Sort(got)
	want := []string{"createInvitation", "createTeam", "deleteInvitation", "me", "team", "teams", "updateTeam"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields open to bearer tokens (-want +got):\n%s", diff)
	}
	// Every root field has an operation in rootOperations, so that TestAnonymousIsRefused
	// cannot miss a field added later.
	for _, f := range rootFields(t) {
		if _, ok := rootOperations[f.Name]; !ok && f.Name != "config" {
			t.Errorf("rootOperations has no operation for %s", f.Name)
		}
	}
}

func TestMalformedIDIsBadUserInput(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	u := storetest.User(t, s, storetest.Organization(t, s)).ID
	for name, tc := range map[string]struct {
		query string
		vars  map[string]any
	}{
		"contact variable":          {`query($id: ID!) { contact(id: $id) { id } }`, map[string]any{"id": "nope"}},
		"contact literal":           {`{ contact(id: "123") { id } }`, nil},
		"contact number":            {`query($id: ID!) { contact(id: $id) { id } }`, map[string]any{"id": 42}},
		"organization":              {`query($id: ID!) { organization(id: $id) { id } }`, map[string]any{"id": "00000000-0000-0000-0000-00000000000g"}},
		"organization without dash": {`query($id: ID!) { organization(id: $id) { id } }`, map[string]any{"id": "00000000000040008000000000000001"}},
		"notInTeam":                 {`query($t: ID) { users(notInTeam: $t) { totalCount } }`, map[string]any{"t": "'; DROP TABLE users; --"}},
		"deleteContact input":       {`mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId } }`, map[string]any{"id": "x"}},
		"updateOrganization input":  {`mutation { updateOrganization(input: {id: "x", name: "y"}) { organization { id } } }`, nil},
		"createContact overrideId":  {`mutation($o: ID) { createContact(input: {fullName: "x", overrideId: $o}) { contact { id } } }`, map[string]any{"o": "{}"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := a.do(session(u), tc.query, tc.vars, nil)
			assertCode(t, r, "BAD_USER_INPUT", "")
		})
	}
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestInternalErrorsAreOpaque(t *testing.T) {
	// A store whose connections are closed fails every query with a driver error: the kind of
	// failure the presenter must log for operators and hide from clients.
	s := storetest.OpenFresh(t)
	user := storetest.User(t, s, storetest.Organization(t, s)).ID
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	h := graph.NewHandler(s, graph.Options{Settings: allFeatures, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	a := &api{tb: t, c: client.New(h), s: s}

	// Every authenticated root operation (config reads no database).
	for _, q := range rootOperations {
		r := a.do(session(user), q, nil, nil)
		assertCode(t, r, "INTERNAL", "")
		for _, e := range r.Errors {
			if e.Message != "internal error" {
				t.Errorf("%s: message = %q, want %q", q, e.Message, "internal error")
			}
		}
	}
	if got := logs.String(); !strings.Contains(got, "resolver failed") || !strings.Contains(got, "database is closed") {
		t.Errorf("the cause was not logged for operators; logs:\n%s", got)
	}
}
