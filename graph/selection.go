package graph

import (
	"context"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"lasuite.fr/people/store"
)

// What an operation selects, read from its document: the helpers that let a resolver prepare
// only what will be read (a connection's edges, an access's user, the columns and counts of a
// page of accesses, the columns of a team). They over-approximate: fragments count whatever
// their type condition, and @skip and @include are not evaluated, so that a field that might
// be resolved is always prepared. They are decided from the document alone, never from data,
// so the number of statements stays fixed whatever the page sizes.

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

// briefUserFields are the fields of User that a brief user (store.AccessShape.BriefUser) holds.
var briefUserFields = []string{"id", "email", "name", "__typename"}

// accessShape narrows what a page of accesses reads to what sel (a TeamAccessConnection's
// selection) may use. It over-approximates what is selected (fragments count whatever their
// type condition, @skip and @include are not evaluated), so a field that might be resolved is
// always read: the counts for totalCount and for the abilities (a team's owners), every
// column of a user whose selection asks more than briefUserFields.
func accessShape(sel ast.SelectionSet) store.AccessShape {
	counted := selectsIn(sel, []string{"totalCount"}) ||
		selectsIn(sel, []string{"nodes", "abilities"}) || selectsIn(sel, []string{"edges", "node", "abilities"})
	return store.AccessShape{
		NoCounts: !counted,
		BriefUser: selectsOnly(sel, briefUserFields, []string{"nodes", "user"}) &&
			selectsOnly(sel, briefUserFields, []string{"edges", "node", "user"}),
		NoDates: !selectsIn(sel, []string{"nodes", "createdAt"}) && !selectsIn(sel, []string{"edges", "node", "createdAt"}),
	}
}

// briefTeamFields are the fields of Team that a brief team (store.TeamShape.Brief) answers:
// the others read columns it leaves out.
var briefTeamFields = []string{"id", "name", "role", "abilities", "accesses", "invitations", "serviceProviders", "__typename"}

// teamShape narrows what a team read with its accesses takes to what sel, the team's
// selection, may use (over-approximated as in accessShape).
func teamShape(sel ast.SelectionSet) store.TeamShape {
	return store.TeamShape{Brief: selectsOnly(sel, briefTeamFields, nil)}
}

// teamsShape is teamShape for the teams of sel, a TeamConnection's selection.
func teamsShape(sel ast.SelectionSet) store.TeamShape {
	return store.TeamShape{Brief: selectsOnly(sel, briefTeamFields, []string{"nodes"}) &&
		selectsOnly(sel, briefTeamFields, []string{"edges", "node"})}
}

// selectsOnly reports whether every field that set may select at the end of path (by name,
// fragments expanded, whatever their type condition or directives) is one of names. A path
// that set does not hold selects nothing there, which is only names.
func selectsOnly(set ast.SelectionSet, names []string, path []string) bool {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			switch {
			case len(path) == 0:
				if !slices.Contains(names, sel.Name) {
					return false
				}
			case sel.Name == path[0]:
				if !selectsOnly(sel.SelectionSet, names, path[1:]) {
					return false
				}
			}
		case *ast.InlineFragment:
			if !selectsOnly(sel.SelectionSet, names, path) {
				return false
			}
		case *ast.FragmentSpread:
			if sel.Definition == nil || !selectsOnly(sel.Definition.SelectionSet, names, path) {
				return false
			}
		}
	}
	return true
}

// selectionKey identifies a collected field's selection: the field alone does not, since a
// field of a fragment spread in two places is merged with different siblings in each.
type selectionKey struct {
	field *ast.Field
	first *ast.Selection // the selection set's array
	n     int
}

func selectionKeyOf(f graphql.CollectedField) selectionKey {
	k := selectionKey{field: f.Field, n: len(f.Selections)}
	if k.n > 0 {
		k.first = &f.Selections[0]
	}
	return k
}

// accessShape returns accessShape of f's selection, an accesses field of the operation.
func (l *loaders) accessShape(f graphql.CollectedField) store.AccessShape {
	k := selectionKeyOf(f)
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.shapes[k]; ok {
		return s
	}
	if l.shapes == nil {
		l.shapes = map[selectionKey]store.AccessShape{}
	}
	s := accessShape(f.Selections)
	l.shapes[k] = s
	return s
}
