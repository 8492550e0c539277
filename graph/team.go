package graph

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/vikstrous/dataloadgen"

	"lasuite.fr/people/graph/model"
	"lasuite.fr/people/store"
)

// teamParent is the team's parent as the caller sees it: a parent the caller may not see (the
// service filter of a partner's token, or a team reached through another organization) is
// null, as a root's.
func teamParent(ctx context.Context, t *store.TeamView) (*store.TeamView, error) {
	if t.ParentID == nil {
		return nil, nil
	}
	p, err := loadersFrom(ctx).teams().Load(ctx, *t.ParentID)
	if store.KindOf(err) == store.KindNotFound {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("team %s parent: %w", t.ID, err)
	}
	return p, nil
}

// teamChildren pages the children of one team that the caller may see. Each team's children
// are one statement; they join the request's team pages, so that their own nested lists are
// batched as a list's.
func (r *teamResolver) teamChildren(ctx context.Context, t *store.TeamView, first *int, after *string) (*model.TeamConnection, error) {
	_, actor := principal(ctx)
	pg, err := page(first, after)
	if err != nil {
		return nil, err
	}
	l, err := r.store.TeamChildren(ctx, actor, t.ID, pg)
	if err != nil {
		return nil, fmt.Errorf("team %s children: %w", t.ID, err)
	}
	loadersFrom(ctx).teamPage(l.Items)
	edges, nodes, info := connection(ctx, l, func(c string, n store.TeamView) model.TeamEdge { return model.TeamEdge{Cursor: c, Node: &n} })
	return &model.TeamConnection{Edges: edges, Nodes: nodes, PageInfo: info, TotalCount: l.Total}, nil
}

func (l *loaders) teams() *dataloadgen.Loader[uuid.UUID, *store.TeamView] {
	return made(l, &l.teamL, func() *dataloadgen.Loader[uuid.UUID, *store.TeamView] {
		return dataloadgen.NewLoader(byID(func(ctx context.Context, ids []uuid.UUID) ([]store.TeamView, error) {
			return l.store.TeamsByIDs(ctx, l.actor, ids)
		}, func(t store.TeamView) uuid.UUID { return t.ID }, "team"), dataloadgen.WithWait(l.wait))
	})
}

func (l *loaders) teamAncestors() *dataloadgen.Loader[uuid.UUID, []store.TeamView] {
	return made(l, &l.ancestorL, func() *dataloadgen.Loader[uuid.UUID, []store.TeamView] {
		return dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]store.TeamView, error) {
			return l.store.TeamAncestorsByIDs(ctx, l.actor, ids)
		}), dataloadgen.WithWait(l.wait))
	})
}
