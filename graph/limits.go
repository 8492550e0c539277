package graph

import (
	"context"
	"encoding/json"
	"math"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"lasuite.fr/people/store"
)

// Limits bound what one request may ask. Each refusal is a GraphQL error with its own
// extensions.code, given before anything runs; none waits for a timeout. Zero fields take the
// defaults.
type Limits struct {
	MaxDepth              int   // nesting of fields, introspection aside; default 12
	MaxIntrospectionDepth int   // nesting under __schema and __type, which MaxDepth leaves out; default 20
	MaxComplexity         int   // cost, lists counted at their page size (operationCost); default 20,000
	MaxAliases            int   // aliased fields per operation, fragments expanded; default 30
	MaxOperationBytes     int   // length of the GraphQL document; default 16 KiB
	MaxBodyBytes          int64 // a POST body, variables included: 413 beyond it; default 1 MiB
}

// DefaultLimits returns the limits when nothing is configured. The complexity budget leaves room
// for the frontend's largest page: the team list (teamsPageQuery in the tests: teams with
// their members, invitations and services) costs 2,340 at 20 teams and 11,700 at 100. The
// introspection query GraphiQL sends (graphql-js's, whose TypeRef fragment follows ofType 8
// times) nests 14 deep, within the introspection limit with room for deeper TypeRefs.
func DefaultLimits() Limits {
	return Limits{MaxDepth: 12, MaxIntrospectionDepth: 20, MaxComplexity: 20_000, MaxAliases: 30, MaxOperationBytes: 16 << 10, MaxBodyBytes: 1 << 20}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxIntrospectionDepth <= 0 {
		l.MaxIntrospectionDepth = d.MaxIntrospectionDepth
	}
	if l.MaxComplexity <= 0 {
		l.MaxComplexity = d.MaxComplexity
	}
	if l.MaxAliases <= 0 {
		l.MaxAliases = d.MaxAliases
	}
	if l.MaxOperationBytes <= 0 {
		l.MaxOperationBytes = d.MaxOperationBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	return l
}

// limitError is a refused operation; the transport answers it as a request error (400 with
// graphql-response+json, 200 with application/json) with no data.
func limitError(code string, pos *ast.Position, format string, args ...any) *gqlerror.Error {
	err := gqlerror.ErrorPosf(pos, format, args...)
	err.Extensions = map[string]any{"code": code}
	return err
}

// operationSize refuses a document over MaxOperationBytes before anything else reads it. It
// runs before persisted queries, so that only documents within the limit are remembered and a
// hash-only request is never refused for the size of what it stands for.
type operationSize struct{ max int }

func (operationSize) ExtensionName() string                   { return "OperationSize" }
func (operationSize) Validate(graphql.ExecutableSchema) error { return nil }

func (o operationSize) MutateOperationParameters(_ context.Context, p *graphql.RawParams) *gqlerror.Error {
	if len(p.Query) > o.max {
		return limitError(CodeOperationTooLarge, nil, "the operation is %d bytes long, over the limit of %d", len(p.Query), o.max)
	}
	return nil
}

// persistedQueries is gqlgen's automatic persisted queries (Apollo's extensions.persistedQuery,
// SHA-256) with codes on its errors, which gqlgen leaves without one (they would read as
// INTERNAL).
type persistedQueries struct {
	extension.AutomaticPersistedQuery
}

func (p persistedQueries) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	err := p.AutomaticPersistedQuery.MutateOperationParameters(ctx, raw)
	if err != nil && err.Extensions["code"] == nil {
		err.Extensions = map[string]any{"code": CodeBadRequest}
	}
	return err
}

// operationShape refuses documents nested deeper than MaxDepth, with more than MaxAliases
// aliases, or with more fields than the complexity budget could ever allow, before gqlgen
// validates them: validation and the complexity walk both grow with the document expanded,
// and a few fragments spread into each other multiply it. A field costs at least 1, except a
// paged one, which costs at least its selection (operationCost): an operation within the budget
// has at most twice as many fields. It parses once more only documents the query cache does
// not hold; cached ones passed already.
type operationShape struct {
	limits Limits
	cache  graphql.Cache[*ast.QueryDocument]
}

func (operationShape) ExtensionName() string                   { return "OperationShape" }
func (operationShape) Validate(graphql.ExecutableSchema) error { return nil }

func (o operationShape) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if _, ok := o.cache.Get(ctx, p.Query); ok {
		return nil
	}
	doc, err := parser.ParseQuery(&ast.Source{Input: p.Query})
	if err != nil {
		return nil // gqlgen parses it again and reports the syntax error
	}
	m := shapeMeter{doc: doc, memo: map[string]shape{}, visiting: map[string]bool{}}
	for _, op := range doc.Operations {
		s := m.selectionSet(op.SelectionSet)
		switch {
		case s.depth > o.limits.MaxDepth:
			return limitError(CodeQueryTooDeep, op.Position, "the operation nests fields %d deep, over the limit of %d", s.depth, o.limits.MaxDepth)
		case s.introspection > o.limits.MaxIntrospectionDepth:
			return limitError(CodeQueryTooDeep, op.Position, "the operation nests introspection fields %d deep, over the limit of %d",
				s.introspection, o.limits.MaxIntrospectionDepth)
		case s.aliases > o.limits.MaxAliases:
			return limitError(CodeTooManyAliases, op.Position, "the operation has %d aliases, over the limit of %d", s.aliases, o.limits.MaxAliases)
		case s.fields > 2*o.limits.MaxComplexity:
			return limitError(CodeQueryTooComplex, op.Position, "the operation selects %d fields, more than the complexity limit of %d allows", s.fields, o.limits.MaxComplexity)
		}
	}
	return nil
}

// shape measures a selection set with its fragments expanded. introspection is the depth of
// its __schema and __type fields, which depth leaves out.
type shape struct{ depth, introspection, aliases, fields int }

// shapeMeter measures each fragment once (memo), so that fragments spread into each other
// cost their number, not the size of their expansion. Counts saturate instead of
// overflowing. A fragment cycle counts as empty: validation reports it.
type shapeMeter struct {
	doc      *ast.QueryDocument
	memo     map[string]shape
	visiting map[string]bool
}

func (m shapeMeter) selectionSet(set ast.SelectionSet) shape {
	var total shape
	for _, sel := range set {
		var s shape
		switch sel := sel.(type) {
		case *ast.Field:
			if sel.Name == "__schema" || sel.Name == "__type" {
				// The standard introspection query nests deeper than any data query: it has a
				// limit of its own (gqlparser's MaxIntrospectionDepth rule counts only the
				// lists of __Type, not ofType). Its aliases count like any others.
				in := m.selectionSet(sel.SelectionSet)
				s = shape{introspection: satAdd(max(in.depth, in.introspection), 1), aliases: in.aliases}
				if sel.Alias != sel.Name {
					s.aliases = satAdd(s.aliases, 1)
				}
				break
			}
			s = m.selectionSet(sel.SelectionSet)
			s.depth++
			s.fields = satAdd(s.fields, 1)
			if sel.Alias != sel.Name { // the parser sets Alias to Name when there is none
				s.aliases = satAdd(s.aliases, 1)
			}
		case *ast.InlineFragment:
			s = m.selectionSet(sel.SelectionSet)
		case *ast.FragmentSpread:
			s = m.fragment(sel.Name)
		}
		total = shape{max(total.depth, s.depth), max(total.introspection, s.introspection), satAdd(total.aliases, s.aliases), satAdd(total.fields, s.fields)}
	}
	return total
}

func (m shapeMeter) fragment(name string) shape {
	if s, ok := m.memo[name]; ok {
		return s
	}
	def := m.doc.Fragments.ForName(name)
	if def == nil || m.visiting[name] {
		return shape{}
	}
	m.visiting[name] = true
	s := m.selectionSet(def.SelectionSet)
	delete(m.visiting, name)
	m.memo[name] = s
	return s
}

func satAdd(a, b int) int {
	if a > math.MaxInt32-b {
		return math.MaxInt32
	}
	return a + b
}

// operationCost runs after validation, with variables known. In one walk of the operation, it
// refuses a `first` outside 1..100 on any field that takes one, before any resolver runs
// (page() checks it again), then an operation whose cost exceeds MaxComplexity.
//
// The cost is gqlgen's complexity (complexity.Calculate: each field costs 1 plus its selection,
// fragments expanded, __schema free) with the cost of lists: a field with a `first` argument
// returns up to first items (default 20), each costing its selection, so it costs first × the
// cost of its selection (at least 1). Fields added to the schema are counted the same way
// without anything to declare. The walk allocates nothing, where gqlgen's built a map of
// arguments for every field of every request.
type operationCost struct{ max int }

func (operationCost) ExtensionName() string                   { return "OperationCost" }
func (operationCost) Validate(graphql.ExecutableSchema) error { return nil }

func (o operationCost) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	m := costMeter{vars: opCtx.Variables}
	cost := m.selectionSet(opCtx.Operation.SelectionSet)
	if m.err != nil {
		return m.err
	}
	if cost > o.max {
		return limitError(CodeQueryTooComplex, opCtx.Operation.Position,
			"the operation costs %d, over the complexity limit of %d: ask for smaller pages (first) or fewer fields", cost, o.max)
	}
	return nil
}

// costMeter measures an operation's cost and keeps the first `first` out of range, in document
// order. Counts saturate instead of overflowing; the shape check (operationShape) already
// bounded the expanded operation.
type costMeter struct {
	vars map[string]any
	err  *gqlerror.Error
}

func (m *costMeter) selectionSet(set ast.SelectionSet) int {
	total := 0
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			total = satAdd(total, m.field(sel))
		case *ast.InlineFragment:
			total = satAdd(total, m.selectionSet(sel.SelectionSet))
		case *ast.FragmentSpread:
			if sel.Definition != nil {
				total = satAdd(total, m.selectionSet(sel.Definition.SelectionSet))
			}
		}
		if m.err != nil {
			return 0
		}
	}
	return total
}

func (m *costMeter) field(f *ast.Field) int {
	if f.Definition == nil || f.Definition.Type.Name() == "__Schema" {
		return 0 // introspection has its own policy
	}
	if f.Definition.Arguments.ForName("first") == nil {
		return satAdd(1, m.selectionSet(f.SelectionSet)) // a leaf's selection is empty
	}
	first := int64(store.DefaultPageSize)
	if arg := f.Arguments.ForName("first"); arg != nil {
		v, _ := arg.Value.Value(m.vars)
		if n, ok := toInt(v); ok {
			if n < 1 || n > store.MaxPageSize {
				m.err = gqlerror.ErrorPosf(arg.Position, "first must be between 1 and %d", store.MaxPageSize)
				m.err.Extensions = map[string]any{"code": CodeBadUserInput, "field": "first"}
				return 0
			}
			first = n
		}
	}
	return int(min(first*int64(max(m.selectionSet(f.SelectionSet), 1)), math.MaxInt32))
}

// toInt reads an Int argument: int64 from a literal, json.Number or int64 from a variable.
func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}
