package graph

import (
	"context"
	"fmt"
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
	actor store.Actor
	wait  time.Duration
	store *store.Store
	pages teamPages

	// mu guards what follows. Each loader is made on first use: an operation uses one or two of
	// them, and the team pages' lists, joined with their users, use none of the others.
	mu            sync.Mutex
	userL         *dataloadgen.Loader[uuid.UUID, *store.User]
	organizationL *dataloadgen.Loader[uuid.UUID, *store.OrganizationView]
	contactL      *dataloadgen.Loader[uuid.UUID, *store.ContactView]
	teamL         *dataloadgen.Loader[uuid.UUID, *store.TeamView]  // Team.parent (graph/team.go)
	ancestorL     *dataloadgen.Loader[uuid.UUID, []store.TeamView] // Team.ancestors
	serviceL      *pageLoader[[]store.ServiceProvider]
	adminL        *adminLoaders // for staff fields (graph/admin.go)
	// One loader per distinct set of list arguments.
	accesses      map[store.AccessFilter]*pageLoader[store.List[store.TeamAccessView]]
	invitations   map[store.Page]*pageLoader[store.List[store.Invitation]]
	adminAccesses map[store.AccessFilter]*pageLoader[store.List[store.TeamAccessView]]
	// The shape of each accesses field of the operation (accessShape), worked out once for
	// all the teams of a list.
	shapes map[selectionKey]store.AccessShape

	staffOnce sync.Once // the caller's staff status, read once per operation
	staffAs   store.StaffActor
	staffErr  error
}

type loadersKey struct{}

func newLoaders(s *store.Store, actor store.Actor, wait time.Duration) *loaders {
	return &loaders{actor: actor, wait: wait, store: s}
}

// made returns *p, making it with mk under l.mu on first use.
func made[T any](l *loaders, p **T, mk func() *T) *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if *p == nil {
		*p = mk()
	}
	return *p
}

func (l *loaders) users() *dataloadgen.Loader[uuid.UUID, *store.User] {
	return made(l, &l.userL, func() *dataloadgen.Loader[uuid.UUID, *store.User] {
		return dataloadgen.NewLoader(byID(l.store.UsersByIDs, func(u store.User) uuid.UUID { return u.ID }, "user"),
			dataloadgen.WithWait(l.wait))
	})
}

func (l *loaders) organizations() *dataloadgen.Loader[uuid.UUID, *store.OrganizationView] {
	return made(l, &l.organizationL, func() *dataloadgen.Loader[uuid.UUID, *store.OrganizationView] {
		return dataloadgen.NewLoader(byID(func(ctx context.Context, ids []uuid.UUID) ([]store.OrganizationView, error) {
			return l.store.OrganizationsByIDs(ctx, l.actor.UserID, ids)
		}, func(o store.OrganizationView) uuid.UUID { return o.ID }, "organization"), dataloadgen.WithWait(l.wait))
	})
}

func (l *loaders) contacts() *dataloadgen.Loader[uuid.UUID, *store.ContactView] {
	return made(l, &l.contactL, func() *dataloadgen.Loader[uuid.UUID, *store.ContactView] {
		return dataloadgen.NewLoader(byID(func(ctx context.Context, ids []uuid.UUID) ([]store.ContactView, error) {
			return l.store.ContactsByIDs(ctx, l.actor.UserID, ids)
		}, func(c store.ContactView) uuid.UUID { return c.ID }, "contact"), dataloadgen.WithWait(l.wait))
	})
}

func (l *loaders) teamServiceProviders() *pageLoader[[]store.ServiceProvider] {
	return made(l, &l.serviceL, func() *pageLoader[[]store.ServiceProvider] {
		return newPageLoader(&l.pages, func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]store.ServiceProvider, error) {
			return l.store.ServiceProvidersByTeamIDs(ctx, l.actor, ids)
		}, l.wait)
	})
}

func (l *loaders) admin() *adminLoaders {
	return made(l, &l.adminL, func() *adminLoaders { return newAdminLoaders(l) })
}

// staff returns the proof that the caller is active staff, which the store's staff readers
// take. The store decides (store.Staff), once per operation, from the database: never from
// anything the client sends.
func (l *loaders) staff(ctx context.Context) (store.StaffActor, error) {
	l.staffOnce.Do(func() {
		l.staffAs, l.staffErr = l.store.Staff(ctx, l.actor)
		if l.staffErr != nil && store.KindOf(l.staffErr) != store.KindForbidden {
			l.staffErr = fmt.Errorf("staff check: %w", l.staffErr)
		}
	})
	return l.staffAs, l.staffErr
}

// asStaff gives fetch, a staff reader of the store, the operation's proof that the caller is
// staff (loaders.staff).
func asStaff[K, V any](l *loaders, fetch func(context.Context, store.StaffActor, K) (V, error)) func(context.Context, K) (V, error) {
	return func(ctx context.Context, k K) (V, error) {
		staff, err := l.staff(ctx)
		if err != nil {
			var zero V
			return zero, err
		}
		return fetch(ctx, staff, k)
	}
}

// adminTeamAccesses returns the loader of staff's team access pages for one set of arguments.
func (l *loaders) adminTeamAccesses(f store.AccessFilter) *pageLoader[store.List[store.TeamAccessView]] {
	return loaderFor(l, &l.adminAccesses, f, func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]store.List[store.TeamAccessView], error) {
		staff, err := l.staff(ctx)
		if err != nil {
			return nil, err
		}
		return l.store.AdminTeamAccessesByTeamIDs(ctx, staff, ids, f)
	})
}

func loadersFrom(ctx context.Context) *loaders {
	return ctx.Value(loadersKey{}).(*loaders)
}

// teamAccesses returns the loader of team access pages for one set of arguments.
func (l *loaders) teamAccesses(f store.AccessFilter) *pageLoader[store.List[store.TeamAccessView]] {
	return loaderFor(l, &l.accesses, f, func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]store.List[store.TeamAccessView], error) {
		return l.store.TeamAccessesByTeamIDs(ctx, l.actor, ids, f)
	})
}

// teamInvitations returns the loader of invitation pages for one page size and position.
func (l *loaders) teamInvitations(p store.Page) *pageLoader[store.List[store.Invitation]] {
	return loaderFor(l, &l.invitations, p, func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]store.List[store.Invitation], error) {
		return l.store.InvitationsByTeamIDs(ctx, l.actor, ids, p)
	})
}

// loaderFor returns the loader of m for one set of list arguments, making it on first use.
func loaderFor[K comparable, V any](l *loaders, m *map[K]*pageLoader[V], key K, fetch func(context.Context, []uuid.UUID) (map[uuid.UUID]V, error)) *pageLoader[V] {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ld, ok := (*m)[key]; ok {
		return ld
	}
	if *m == nil {
		*m = map[K]*pageLoader[V]{}
	}
	ld := newPageLoader(&l.pages, fetch, l.wait)
	(*m)[key] = ld
	return ld
}

// teamPage records a page of teams the operation has read, so that their nested lists are
// fetched for the whole page at once.
func (l *loaders) teamPage(ts []store.TeamView) *teamPage {
	ids := make([]uuid.UUID, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return l.pages.add(ids)
}

// teamPages remembers which page each team of the operation came in. A time window alone
// (dataloadgen's wait) batches only the keys that arrive within it, so under load a page of
// teams could cost several statements per nested list; knowing the page makes it one, always.
type teamPages struct {
	mu sync.Mutex
	of map[uuid.UUID]*teamPage
}

type teamPage struct{ ids []uuid.UUID }

func (ps *teamPages) add(ids []uuid.UUID) *teamPage {
	// A page of one counts too: through the plain loader, a single team's nested lists would
	// wait LoaderWait for keys that never come (make bench: W3 at one connection, p50 3.1 ms
	// with the wait, 1.9 ms without).
	if len(ids) == 0 {
		return nil
	}
	pg := &teamPage{ids: ids}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.of == nil {
		ps.of = make(map[uuid.UUID]*teamPage, len(ids))
	}
	for _, id := range ids {
		if _, ok := ps.of[id]; !ok { // a team read twice keeps its first page
			ps.of[id] = pg
		}
	}
	return pg
}

func (ps *teamPages) pageOf(id uuid.UUID) *teamPage {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.of[id]
}

// pageLoader loads a per-team value (a nested list) for a team: for a team that came in a
// recorded page, the first request fetches the whole page and the others wait for it; any
// other team goes through a dataloadgen loader.
type pageLoader[V any] struct {
	pages *teamPages
	fetch func(context.Context, []uuid.UUID) (map[uuid.UUID]V, error)
	wait  time.Duration

	mu       sync.Mutex
	calls    map[*teamPage]*pageCall[V]
	fallback *dataloadgen.Loader[uuid.UUID, V] // made on first use: most teams come in a page
}

type pageCall[V any] struct {
	done chan struct{}
	m    map[uuid.UUID]V
	err  error
}

func newPageLoader[V any](pages *teamPages, fetch func(context.Context, []uuid.UUID) (map[uuid.UUID]V, error), wait time.Duration) *pageLoader[V] {
	return &pageLoader[V]{pages: pages, fetch: fetch, wait: wait}
}

// prime gives the teams of pg their values, read with the page itself (graph/prefetch.go): their
// Load returns them without a fetch. A page already fetched or being fetched keeps its call.
func (pl *pageLoader[V]) prime(pg *teamPage, m map[uuid.UUID]V) {
	if pg == nil {
		return
	}
	c := &pageCall[V]{done: make(chan struct{}), m: m}
	close(c.done)
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.calls == nil {
		pl.calls = map[*teamPage]*pageCall[V]{}
	}
	if _, ok := pl.calls[pg]; !ok {
		pl.calls[pg] = c
	}
}

// Load returns the value for team id; a team with nothing in it gets the zero value.
func (pl *pageLoader[V]) Load(ctx context.Context, id uuid.UUID) (V, error) {
	pg := pl.pages.pageOf(id)
	pl.mu.Lock()
	if pg == nil {
		if pl.fallback == nil {
			pl.fallback = dataloadgen.NewLoader(byKey(pl.fetch), dataloadgen.WithWait(pl.wait))
		}
		fallback := pl.fallback
		pl.mu.Unlock()
		return fallback.Load(ctx, id)
	}
	c, started := pl.calls[pg]
	if !started {
		if pl.calls == nil {
			pl.calls = map[*teamPage]*pageCall[V]{}
		}
		c = &pageCall[V]{done: make(chan struct{})}
		pl.calls[pg] = c
	}
	pl.mu.Unlock()
	if !started {
		func() {
			defer close(c.done) // even if fetch panics, so that the page's other teams return
			c.m, c.err = pl.fetch(ctx, pg.ids)
		}()
	}
	select {
	case <-c.done:
		return c.m[id], c.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
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
