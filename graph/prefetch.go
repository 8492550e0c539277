package graph

import (
	"context"
	"fmt"

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
// the executor collects it, and returns the filter its resolver will compute (accessFilterOf).
// ok is false when there is none, or when its arguments are not valid: the resolver then
// reports them.
func teamAccesses(ctx context.Context, sel ast.SelectionSet) (store.AccessFilter, bool) {
	op := graphql.GetOperationContext(ctx)
	for _, f := range graphql.CollectFields(op, sel, teamImplementors) {
		if f.Name != "accesses" {
			continue
		}
		af, err := accessFilterOf(ctx, f)
		return af, err == nil
	}
	return store.AccessFilter{}, false
}

// accessFilterOf is the store filter of f, a Team.accesses or AdminTeam.accesses field of the
// operation: its arguments as the executor reads them (the field's argument map, defaults and
// variables applied), and the shape its selection needs. It is the only place that computes
// it, for the look-ahead that primes the accesses loader and for the resolver that reads the
// loader: the two meet because they key the loader by this one function's result.
func accessFilterOf(ctx context.Context, f graphql.CollectedField) (store.AccessFilter, error) {
	args := f.ArgumentMap(graphql.GetOperationContext(ctx).Variables)
	search, err := optionalArg(args, "search", graphql.UnmarshalString)
	if err != nil {
		return store.AccessFilter{}, err
	}
	orderBy, err := optionalArg(args, "orderBy", func(v any) (o model.TeamAccessOrder, err error) {
		err = o.UnmarshalGQL(v)
		return o, err
	})
	if err != nil {
		return store.AccessFilter{}, err
	}
	first, err := optionalArg(args, "first", graphql.UnmarshalInt)
	if err != nil {
		return store.AccessFilter{}, err
	}
	after, err := optionalArg(args, "after", graphql.UnmarshalString)
	if err != nil {
		return store.AccessFilter{}, err
	}
	pg, err := page(first, after)
	if err != nil {
		return store.AccessFilter{}, err
	}
	af := store.AccessFilter{Search: deref(search), Page: pg, Shape: loadersFrom(ctx).accessShape(f)}
	if orderBy != nil {
		af.Order = accessOrders[*orderBy]
	}
	return af, nil
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
// current field asks for (accessFilterOf), from the loader that load gives for its filter.
// gqlgen has parsed the field's arguments already, and refused them if they were not valid.
func accessConnection(ctx context.Context, team uuid.UUID, load func(store.AccessFilter) *pageLoader[store.List[store.TeamAccessView]]) (*model.TeamAccessConnection, error) {
	f, err := accessFilterOf(ctx, graphql.GetFieldContext(ctx).Field)
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
