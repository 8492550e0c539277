package graph

import (
	"context"
	"fmt"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"

	"lasuite.fr/people/graph/model"
	"lasuite.fr/people/store"
)

// A page of teams, or one team, reads the first page of its members in the same statement when
// the operation selects them (Query.teams, User.teams, Query.team): the resolver looks ahead
// into its selection for Team.accesses, evaluates that field's arguments as its resolver will,
// and primes the accesses loader with the result, so that each team's accesses resolver finds
// its page without a statement of its own. And a page of accesses reads only what the
// operation selects of it (accessShape). Both are decided from the query document alone, never
// from data, so the number of statements stays fixed whatever the page sizes.

// accessFilter is the store filter of a Team.accesses (or AdminTeam.accesses) field: its
// arguments, and shape, what the field's selection needs (loaders.accessShape).
func accessFilter(shape store.AccessShape, search *string, orderBy *model.TeamAccessOrder, first *int, after *string) (store.AccessFilter, error) {
	pg, err := page(first, after)
	if err != nil {
		return store.AccessFilter{}, err
	}
	f := store.AccessFilter{Search: deref(search), Page: pg, Shape: shape}
	if orderBy != nil {
		f.Order = accessOrders[*orderBy]
	}
	return f, nil
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

// teamsAccesses finds the accesses that the current field's connection of teams will be asked
// for: the first Team.accesses under its nodes or edges.node. With them comes the shape of the
// teams.
func teamsAccesses(ctx context.Context) (store.TeamShape, store.AccessFilter, bool) {
	af, ok := teamsAccessFilter(ctx)
	return teamsShape(graphql.GetFieldContext(ctx).Field.Selections), af, ok
}

func teamsAccessFilter(ctx context.Context) (store.AccessFilter, bool) {
	op := graphql.GetOperationContext(ctx)
	for _, f := range graphql.CollectFields(op, graphql.GetFieldContext(ctx).Field.Selections, teamConnectionImplementors) {
		switch f.Name {
		case "nodes":
			if af, ok := teamAccesses(ctx, f.Selections); ok {
				return af, true
			}
		case "edges":
			for _, e := range graphql.CollectFields(op, f.Selections, teamEdgeImplementors) {
				if e.Name != "node" {
					continue
				}
				if af, ok := teamAccesses(ctx, e.Selections); ok {
					return af, true
				}
			}
		}
	}
	return store.AccessFilter{}, false
}

// teamAccessesOf finds the accesses that the current field's team will be asked for, and the
// shape of the team.
func teamAccessesOf(ctx context.Context) (store.TeamShape, store.AccessFilter, bool) {
	sel := graphql.GetFieldContext(ctx).Field.Selections
	af, ok := teamAccesses(ctx, sel)
	return teamShape(sel), af, ok
}

// teamAccesses finds the first Team.accesses field in sel, a Team's selection, collected as
// the executor collects it, and returns the filter its resolver will compute. ok is false
// when there is none, or when its arguments are not valid: the resolver then reports them.
func teamAccesses(ctx context.Context, sel ast.SelectionSet) (store.AccessFilter, bool) {
	op := graphql.GetOperationContext(ctx)
	for _, f := range graphql.CollectFields(op, sel, teamImplementors) {
		if f.Name != "accesses" {
			continue
		}
		args := f.ArgumentMap(op.Variables)
		search, err1 := optionalArg(args, "search", graphql.UnmarshalString)
		orderBy, err2 := optionalArg(args, "orderBy", func(v any) (o model.TeamAccessOrder, err error) {
			err = o.UnmarshalGQL(v)
			return o, err
		})
		first, err3 := optionalArg(args, "first", graphql.UnmarshalInt)
		after, err4 := optionalArg(args, "after", graphql.UnmarshalString)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return store.AccessFilter{}, false
		}
		af, err := accessFilter(loadersFrom(ctx).accessShape(f), search, orderBy, first, after)
		return af, err == nil
	}
	return store.AccessFilter{}, false
}

// optionalArg reads an optional argument of a field's argument map: nil when absent or null.
func optionalArg[T any](args map[string]any, name string, parse func(any) (T, error)) (*T, error) {
	v, ok := args[name]
	if !ok || v == nil {
		return nil, nil
	}
	x, err := parse(v)
	if err != nil {
		return nil, err
	}
	return &x, nil
}

// accessConnection is the body of the accesses resolvers: the page of team's accesses that the
// field asks for, from the loader that load gives for its filter.
func accessConnection(ctx context.Context, team uuid.UUID, load func(store.AccessFilter) *pageLoader[store.List[store.TeamAccessView]],
	search *string, orderBy *model.TeamAccessOrder, first *int, after *string) (*model.TeamAccessConnection, error) {
	f, err := accessFilter(loadersFrom(ctx).accessShape(graphql.GetFieldContext(ctx).Field), search, orderBy, first, after)
	if err != nil {
		return nil, err
	}
	l, err := load(f).Load(ctx, team)
	if err != nil {
		return nil, fmt.Errorf("team accesses: %w", err)
	}
	l.Offset = f.Offset
	edges, nodes, info := connection(ctx, l, func(c string, n store.TeamAccessView) model.TeamAccessEdge {
		return model.TeamAccessEdge{Cursor: c, Node: &n}
	})
	return &model.TeamAccessConnection{Edges: edges, Nodes: nodes, PageInfo: info, TotalCount: l.Total}, nil
}
