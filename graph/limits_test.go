package graph_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"lasuite.fr/people/graph"
	"lasuite.fr/people/store/storetest"
)

// overrides nests Contact.override k times under contacts: the operation is 3+k fields deep.
func overrides(k int) string {
	return "{ contacts { nodes { " + strings.Repeat("override { ", k) + "id" + strings.Repeat(" }", k) + " } } }"
}

// aliases returns n aliased __typename fields.
func aliases(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " a%d: __typename", i)
	}
	return b.String()
}

// fragmentBomb spreads each of n fragments twice into the next: 2^n fields once expanded.
func fragmentBomb(n int) string {
	var b strings.Builder
	b.WriteString("{ ...F0 } ")
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d config { release } ... on Query { ...F%d } } ", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Query { __typename }", n)
	return b.String()
}

// Each limit refuses with its own code, before anything runs, and lets through what is just
// within it. The caller is a user without data, so an operation that passes has no errors.
func TestLimits(t *testing.T) {
	s := storetest.Open(t)
	viewer := session(storetest.User(t, s, storetest.Organization(t, s)).ID)
	padded := func(n int) string { // { __typename } padded with a comment to n bytes
		q := "{ __typename }\n#"
		return q + strings.Repeat("x", n-len(q))
	}
	tests := []struct {
		name   string
		limits graph.Limits
		query  string
		want   string // extensions.code; "" to pass
	}{
		{"depth 12", graph.Limits{}, overrides(9), ""},
		{"depth 13", graph.Limits{}, overrides(10), graph.CodeQueryTooDeep},
		{"depth through fragments", graph.Limits{}, "{ contacts { ...N } } fragment N on ContactConnection { nodes { " +
			strings.Repeat("override { ", 10) + "id" + strings.Repeat(" }", 10) + " } }", graph.CodeQueryTooDeep},
		{"depth configured", graph.Limits{MaxDepth: 2}, "{ me { organization { name } } }", graph.CodeQueryTooDeep},
		// Refused by the introspection policy (the caller is not staff), not by depth.
		{"introspection is not depth", graph.Limits{MaxDepth: 2}, "{ me { id } __type(name: \"Team\") { fields { type { ofType { name } } } } }", graph.CodeIntrospectionDisabled},

		{"30 aliases", graph.Limits{}, "{" + aliases(30) + " }", ""},
		{"31 aliases", graph.Limits{}, "{" + aliases(31) + " }", graph.CodeTooManyAliases},
		{"aliases of each fragment spread", graph.Limits{}, "{ ...A config { release } ... on Query { ...A } } fragment A on Query {" + aliases(16) + " }", graph.CodeTooManyAliases},
		{"aliases configured", graph.Limits{MaxAliases: 2}, "{ a: me { id } b: me { email } c: config { release } }", graph.CodeTooManyAliases},

		{"16 KiB operation", graph.Limits{}, padded(16 << 10), ""},
		{"operation over 16 KiB", graph.Limits{}, padded(16<<10 + 1), graph.CodeOperationTooLarge},
		{"operation size configured", graph.Limits{MaxOperationBytes: 100}, padded(101), graph.CodeOperationTooLarge},

		// A list costs first (default 20) times its selection.
		{"cost at the limit", graph.Limits{MaxComplexity: 10}, "{ teams(first: 10) { totalCount } }", ""},
		{"cost over the limit", graph.Limits{MaxComplexity: 10}, "{ teams(first: 11) { totalCount } }", graph.CodeQueryTooComplex},
		{"first defaults to 20", graph.Limits{MaxComplexity: 19}, "{ teams { totalCount } }", graph.CodeQueryTooComplex},
		{"nested pages multiply", graph.Limits{}, "{ teams(first: 100) { nodes { accesses(first: 100) { nodes { user { name email } } } } } }", graph.CodeQueryTooComplex},
		{"fragment bomb", graph.Limits{}, fragmentBomb(30), graph.CodeQueryTooComplex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := graph.NewHandler(s, graph.Options{Settings: allFeatures, Limits: tt.limits})
			r := serve(t, h, httpReq{method: http.MethodPost, contentType: mediaJSON, as: viewer, body: jsonBody(t, tt.query, nil)})
			if r.Code() != tt.want {
				t.Fatalf("code = %q, want %q (errors: %+v)", r.Code(), tt.want, r.Errors)
			}
			if tt.want != "" {
				if _, data := r.Raw["data"]; data || r.Status != http.StatusOK {
					t.Errorf("refusal: status %d, data entry %v: want 200 (application/json) and no data", r.Status, data)
				}
			}
		})
	}
}

// The frontend's largest page, the team list with members, invitations and services
// (teamsPageQuery), passes the default budget at its largest page size.
func TestDefaultComplexityFitsTheTeamList(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	viewer := storetest.User(t, s, storetest.Organization(t, s)).ID
	a.mustDo(session(viewer), teamsPageQuery, map[string]any{"n": 100}, nil)
}

// Every field that takes `first` refuses a value outside 1..100 before anything runs, whether
// the value is a literal or a variable, and every connection takes `first`.
func TestFirstIsBoundedEverywhere(t *testing.T) {
	h := graph.NewHandler(storetest.Open(t), graph.Options{Settings: allFeatures})
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	paths := pathsFromQuery(schema)
	var paged int
	for _, typ := range schema.Types {
		if typ.Kind != ast.Object || strings.HasPrefix(typ.Name, "__") {
			continue
		}
		for _, f := range typ.Fields {
			first := f.Arguments.ForName("first")
			if strings.HasSuffix(f.Type.Name(), "Connection") && first == nil {
				t.Errorf("%s.%s returns a connection without a first argument", typ.Name, f.Name)
			}
			if first == nil {
				continue
			}
			paged++
			path, ok := paths[typ.Name]
			if !ok {
				t.Errorf("%s.%s: no path from Query to %s", typ.Name, f.Name, typ.Name)
				continue
			}
			for _, n := range []int{0, 101} {
				query := fmt.Sprintf("query($n: Int) { %s%s(first: $n) { __typename }%s }", path, f.Name, strings.Repeat(" }", strings.Count(path, "{")))
				r := serve(t, h, post(mediaJSON, jsonBody(t, query, map[string]any{"n": n})))
				if r.Code() != graph.CodeBadUserInput || len(r.Errors) != 1 || r.Errors[0].Extensions.Field != "first" {
					t.Errorf("%s with first %d: errors %+v, want one BAD_USER_INPUT on first", query, n, r.Errors)
				}
				literal := strings.Replace(strings.Replace(query, "first: $n", fmt.Sprint("first: ", n), 1), "query($n: Int) ", "", 1)
				if r := serve(t, h, post(mediaJSON, jsonBody(t, literal, nil))); r.Code() != graph.CodeBadUserInput {
					t.Errorf("%s: errors %+v, want BAD_USER_INPUT", literal, r.Errors)
				}
			}
		}
	}
	if paged < 6 {
		t.Errorf("found %d fields with first: the schema did not load as expected", paged)
	}
}

// pathsFromQuery returns, for each object type reachable from Query, the opening of a
// selection that reaches it ("team(id: \"…\") { "), shortest first, through fields whose
// required arguments are scalars or enums (filled with any valid value: nothing runs).
func pathsFromQuery(schema *ast.Schema) map[string]string {
	paths := map[string]string{schema.Query.Name: ""}
	queue := []*ast.Definition{schema.Query}
	for len(queue) > 0 {
		typ := queue[0]
		queue = queue[1:]
		for _, f := range typ.Fields {
			next := schema.Types[f.Type.Name()]
			if strings.HasPrefix(f.Name, "__") || next.Kind != ast.Object {
				continue
			}
			if _, seen := paths[next.Name]; seen {
				continue
			}
			args, ok := requiredArgs(schema, f)
			if !ok {
				continue
			}
			paths[next.Name] = paths[typ.Name] + f.Name + args + " { "
			queue = append(queue, next)
		}
	}
	return paths
}

func requiredArgs(schema *ast.Schema, f *ast.FieldDefinition) (string, bool) {
	var args []string
	for _, a := range f.Arguments {
		if !a.Type.NonNull || a.DefaultValue != nil {
			continue
		}
		var v string
		switch t := schema.Types[a.Type.Name()]; {
		case t.Name == "ID":
			v = `"00000000-0000-0000-0000-000000000000"`
		case t.Name == "String":
			v = `"x"`
		case t.Name == "Int":
			v = "1"
		case t.Name == "Boolean":
			v = "true"
		case t.Kind == ast.Enum:
			v = t.EnumValues[0].Name
		default:
			return "", false
		}
		args = append(args, a.Name+": "+v)
	}
	if len(args) == 0 {
		return "", true
	}
	return "(" + strings.Join(args, ", ") + ")", true
}

// The costs the README quotes: a list costs first times its selection.
func TestComplexityExamples(t *testing.T) {
	s := storetest.Open(t)
	viewer := session(storetest.User(t, s, storetest.Organization(t, s)).ID)
	for _, tt := range []struct {
		query string
		vars  map[string]any
		cost  int
	}{
		{"{ teams(first: 20) { nodes { accesses(first: 10) { nodes { user { name } } } } } }", nil, 620},
		{teamsPageQuery, map[string]any{"n": 20}, 2340},
		{teamsPageQuery, map[string]any{"n": 100}, 11700},
	} {
		for _, budget := range []int{tt.cost, tt.cost - 1} {
			h := graph.NewHandler(s, graph.Options{Settings: allFeatures, Limits: graph.Limits{MaxComplexity: budget}})
			r := serve(t, h, httpReq{method: http.MethodPost, contentType: mediaJSON, as: viewer, body: jsonBody(t, tt.query, tt.vars)})
			if want := map[bool]string{true: "", false: graph.CodeQueryTooComplex}[budget == tt.cost]; r.Code() != want {
				t.Errorf("%.40s… %v with a budget of %d: code %q, want %q (costs %d)", tt.query, tt.vars, budget, r.Code(), want, tt.cost)
			}
		}
	}
}

// The shape check counts fields before validation; it never refuses what the cost allows. A
// paged field with first: 1 costs only its selection, the case where fields outnumber cost.
func TestShapeCheckWithinCost(t *testing.T) {
	s := storetest.Open(t)
	viewer := session(storetest.User(t, s, storetest.Organization(t, s)).ID)
	var b strings.Builder
	b.WriteString("{")
	for i := range 10 {
		fmt.Fprintf(&b, " t%d: teams(first: 1) { totalCount }", i)
	}
	b.WriteString(" }")
	// 10 teams fields and 10 totalCount fields, costing 1 each: 20 fields, cost 10.
	h := graph.NewHandler(s, graph.Options{Settings: allFeatures, Limits: graph.Limits{MaxComplexity: 10}})
	r := serve(t, h, httpReq{method: http.MethodPost, contentType: mediaJSON, as: viewer, body: jsonBody(t, b.String(), nil)})
	if len(r.Errors) > 0 {
		t.Errorf("cost 10 within a budget of 10: %+v", r.Errors)
	}
}
