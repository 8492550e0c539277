package graph

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vikstrous/dataloadgen"

	"lasuite.fr/people/store"
)

// loaders batch the nested fields of one operation: a page of 20 teams with their accesses and
// users costs the same few statements as a page of one. They are made per operation, for the
// operation's actor, so nothing is cached across callers.
type loaders struct {
	actor                store.Actor
	wait                 time.Duration
	store                *store.Store
	users                *dataloadgen.Loader[uuid.UUID, *store.User]
	organizations        *dataloadgen.Loader[uuid.UUID, *store.OrganizationView]
	contacts             *dataloadgen.Loader[uuid.UUID, *store.ContactView]
	teamServiceProviders *dataloadgen.Loader[uuid.UUID, []store.ServiceProvider]

	mu          sync.Mutex // guards the two maps: one loader per distinct set of list arguments
	accesses    map[store.AccessFilter]*dataloadgen.Loader[uuid.UUID, store.List[store.TeamAccessView]]
	invitations map[store.Page]*dataloadgen.Loader[uuid.UUID, store.List[store.Invitation]]
}

type loadersKey struct{}

func newLoaders(s *store.Store, actor store.Actor, wait time.Duration) *loaders {
	opt := dataloadgen.WithWait(wait)
	return &loaders{
		actor: actor, wait: wait, store: s,
		users: dataloadgen.NewLoader(byID(func(ctx context.Context, ids []uuid.UUID) ([]store.User, error) {
			return s.UsersByIDs(ctx, ids)
		}, func(u store.User) uuid.UUID { return u.ID }, "user"), opt),
		organizations: dataloadgen.NewLoader(byID(func(ctx context.Context, ids []uuid.UUID) ([]store.OrganizationView, error) {
			return s.OrganizationsByIDs(ctx, actor.UserID, ids)
		}, func(o store.OrganizationView) uuid.UUID { return o.ID }, "organization"), opt),
		contacts: dataloadgen.NewLoader(byID(func(ctx context.Context, ids []uuid.UUID) ([]store.ContactView, error) {
			return s.ContactsByIDs(ctx, actor.UserID, ids)
		}, func(c store.ContactView) uuid.UUID { return c.ID }, "contact"), opt),
		teamServiceProviders: dataloadgen.NewLoader(byKey(s.ServiceProvidersByTeamIDs), opt),
		accesses:             map[store.AccessFilter]*dataloadgen.Loader[uuid.UUID, store.List[store.TeamAccessView]]{},
		invitations:          map[store.Page]*dataloadgen.Loader[uuid.UUID, store.List[store.Invitation]]{},
	}
}

func loadersFrom(ctx context.Context) *loaders {
	return ctx.Value(loadersKey{}).(*loaders)
}

// teamAccesses returns the loader of team access pages for one set of arguments.
func (l *loaders) teamAccesses(f store.AccessFilter) *dataloadgen.Loader[uuid.UUID, store.List[store.TeamAccessView]] {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ld, ok := l.accesses[f]; ok {
		return ld
	}
	ld := dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]store.List[store.TeamAccessView], error) {
		return l.store.TeamAccessesByTeamIDs(ctx, l.actor, ids, f)
	}), dataloadgen.WithWait(l.wait))
	l.accesses[f] = ld
	return ld
}

// teamInvitations returns the loader of invitation pages for one page size and position.
func (l *loaders) teamInvitations(p store.Page) *dataloadgen.Loader[uuid.UUID, store.List[store.Invitation]] {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ld, ok := l.invitations[p]; ok {
		return ld
	}
	ld := dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]store.List[store.Invitation], error) {
		return l.store.InvitationsByTeamIDs(ctx, l.actor, ids, p)
	}), dataloadgen.WithWait(l.wait))
	l.invitations[p] = ld
	return ld
}

// byID adapts a …ByIDs store method to a loader: rows come back in key order, and a key with
// no row (absent or hidden from the actor) is KindNotFound.
func byID[T any](fetch func(context.Context, []uuid.UUID) ([]T, error), id func(T) uuid.UUID, what string) func(context.Context, []uuid.UUID) ([]*T, []error) {
	return func(ctx context.Context, keys []uuid.UUID) ([]*T, []error) {
		rows, err := fetch(ctx, keys)
		out, errs := make([]*T, len(keys)), make([]error, len(keys))
		if err != nil {
			for i := range errs {
				errs[i] = err
			}
			return out, errs
		}
		byID := make(map[uuid.UUID]*T, len(rows))
		for i := range rows {
			byID[id(rows[i])] = &rows[i]
		}
		for i, k := range keys {
			if out[i] = byID[k]; out[i] == nil {
				errs[i] = &store.Error{Kind: store.KindNotFound, Message: what + " not found"}
			}
		}
		return out, errs
	}
}

// byKey adapts a …ByTeamIDs store method: a key with no entry gets the zero value (an empty
// list), since a team with nothing in it is not an error.
func byKey[V any](fetch func(context.Context, []uuid.UUID) (map[uuid.UUID]V, error)) func(context.Context, []uuid.UUID) ([]V, []error) {
	return func(ctx context.Context, keys []uuid.UUID) ([]V, []error) {
		m, err := fetch(ctx, keys)
		out := make([]V, len(keys))
		if err != nil {
			errs := make([]error, len(keys))
			for i := range errs {
				errs[i] = err
			}
			return out, errs
		}
		for i, k := range keys {
			out[i] = m[k]
		}
		return out, nil
	}
}
