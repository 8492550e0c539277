package graph

import (
	"context"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/store"
)

// Introspection says who may query __schema and __type (__typename is always allowed).
type Introspection uint8

const (
	// IntrospectionStaff allows staff users (users.is_staff) only: GRAPHQL_INTROSPECTION=auto
	// in production. It is the zero value, so that a handler built without a policy is closed.
	IntrospectionStaff Introspection = iota
	IntrospectionOn                  // everyone: development, or GRAPHQL_INTROSPECTION=on
	IntrospectionOff                 // no one
)

// introspectionPolicy applies the policy after validation, to the operation that runs. Only an
// operation that selects __schema or __type costs the staff lookup, one indexed read.
type introspectionPolicy struct {
	policy Introspection
	store  *store.Store
	log    *slog.Logger
}

func (introspectionPolicy) ExtensionName() string                   { return "IntrospectionPolicy" }
func (introspectionPolicy) Validate(graphql.ExecutableSchema) error { return nil }

func (x introspectionPolicy) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	field := introspectionField(opCtx.Operation.SelectionSet, map[string]bool{})
	if field == nil {
		return nil
	}
	allowed := x.policy == IntrospectionOn
	if x.policy == IntrospectionStaff {
		if p, ok := auth.PrincipalFrom(ctx); ok {
			_, err := x.store.Staff(ctx, actorOf(p))
			switch store.KindOf(err) {
			case 0:
				allowed = true
			case store.KindForbidden:
			default:
				x.log.ErrorContext(ctx, "introspection check failed", "err", err)
				if store.KindOf(err) == store.KindUnavailable {
					return limitError(CodeUnavailable, nil, "the service is unavailable: retry later")
				}
				return limitError(CodeInternal, nil, "internal error")
			}
		}
	}
	if !allowed {
		return limitError(CodeIntrospectionDisabled, field.Position, "introspection is disabled")
	}
	opCtx.DisableIntrospection = false
	return nil
}

// introspectionField returns the first __schema or __type field of a root selection set (the
// only place validation lets them be), looking into fragments once each.
func introspectionField(set ast.SelectionSet, seen map[string]bool) *ast.Field {
	for _, sel := range set {
		var f *ast.Field
		switch sel := sel.(type) {
		case *ast.Field:
			if sel.Name == "__schema" || sel.Name == "__type" {
				return sel
			}
		case *ast.InlineFragment:
			f = introspectionField(sel.SelectionSet, seen)
		case *ast.FragmentSpread:
			if !seen[sel.Name] && sel.Definition != nil {
				seen[sel.Name] = true
				f = introspectionField(sel.Definition.SelectionSet, seen)
			}
		}
		if f != nil {
			return f
		}
	}
	return nil
}
