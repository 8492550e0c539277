package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"lasuite.fr/people/store"
)

// withUser gives an access that a mutation wrote its user, when the payload selects
// access.user. TeamAccess.user is bound to the access's joined user, not a resolver: a resolver
// runs in a goroutine of its own for every access of every team page, while the lists join the
// user anyway. Only the mutations' accesses come without it, and they load it here through the
// request's user loader, as the resolver did.
func withUser(ctx context.Context, a *store.TeamAccessView) (*store.TeamAccessView, error) {
	if a == nil || a.User != nil || !selects(ctx, "access", "user") {
		return a, nil
	}
	u, err := loadersFrom(ctx).users().Load(ctx, a.UserID)
	if err != nil {
		return nil, fmt.Errorf("team access user: %w", err)
	}
	a.User = u
	return a, nil
}

// selects reports whether the current field's selection may hold the path of fields (by name,
// whatever their aliases), fragments expanded. It reads the document, without gqlgen's field
// collection, and does not evaluate @skip and @include: a field they leave out still counts, so
// that the caller at worst prepares what nobody reads.
func selects(ctx context.Context, path ...string) bool {
	return selectsIn(graphql.GetFieldContext(ctx).Field.Selections, path)
}

func selectsIn(set ast.SelectionSet, path []string) bool {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			if sel.Name == path[0] && (len(path) == 1 || selectsIn(sel.SelectionSet, path[1:])) {
				return true
			}
		case *ast.InlineFragment:
			if selectsIn(sel.SelectionSet, path) {
				return true
			}
		case *ast.FragmentSpread: // validation refused cycles
			if sel.Definition != nil && selectsIn(sel.Definition.SelectionSet, path) {
				return true
			}
		}
	}
	return false
}
