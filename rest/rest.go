// Package rest serves the resource-server REST views of People for partner services (Docs,
// Visio…), at People's paths under /resource-server/v1.0/ (wire.PartnerPrefix): teams, team
// invitations and SCIM /Me, with People's JSON shapes, pagination, status codes and error
// bodies (people-behaviour.md §1), so that a partner moves from People without a change.
//
// It is a transport and nothing more: every read and write is the store method a GraphQL
// field calls, with the same store.Actor (auth.Principal.Actor), so that segregation by
// service, permissions, the audit trail and webhooks are the GraphQL API's, by construction.
// Where People's REST views see teams differently from its GraphQL twin (the invitation views
// count only teams linked to the calling service), the difference is a store filter
// (store.Actor.LinkedOnly), not a filter written here. GraphQL stays the API for everything
// else.
//
// It imports auth, ratelimit, store and wire; never main, graph or ops: main mounts it behind the same
// bearer middleware and gates as /graphql, and hands it the rate limit as Options.Throttle.
package rest

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/ratelimit"
	"lasuite.fr/people/store"
	"lasuite.fr/people/wire"
)

// Options configure the partner REST API.
type Options struct {
	// PublicURL (PUBLIC_URL) starts the absolute URLs of the answers: a list's next and
	// previous pages, SCIM's meta.location. People builds them from the request's Host; a
	// configured origin cannot be steered by a forged Host header.
	PublicURL string
	Log       *slog.Logger
	// Throttle holds a call over People's throttled data (SCIM /Me, as GraphQL's me) to the
	// server's rate limits (ops.Layer.Throttle) and returns how long the caller must wait, 0
	// to go on; nil throttles nothing.
	Throttle func(ctx context.Context, route string) time.Duration
}

// Handler serves the partner REST API.
type Handler struct {
	store *store.Store
	opts  Options
}

// New prepares the partner REST API over s.
func New(s *store.Store, o Options) *Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	return &Handler{store: s, opts: o}
}

// route is one of People's URLs: the handler of each method it answers.
type route struct {
	pattern   string // below wire.PartnerPrefix, in http.ServeMux's syntax
	name      string // for the rate limit and the log: the pattern without its prefix
	methods   map[string]func(h *Handler, w http.ResponseWriter, r *http.Request, c caller)
	throttled bool // over People's throttled data: Options.Throttle applies
	scim      bool // a SCIM resource: SCIM's media type (wire.Respond knows its errors)
	// teamInPath: the {team_id} of the path must be a UUID, as People's URL converter
	// requires, or there is no such URL (404 before authentication).
	teamInPath bool
}

// routes are People's resource-server URLs (people-behaviour.md §1.1). DRF's SimpleRouter
// wants the trailing slash; a method a URL does not answer is 405 after authentication, so an
// anonymous DELETE learns only that it needs a token. People's JWKS URL is main's.
var routes = []route{
	{pattern: "teams/{$}", name: "teams", methods: methods{
		http.MethodGet: (*Handler).listTeams, http.MethodPost: (*Handler).createTeam}},
	{pattern: "teams/{id}/{$}", name: "teams/{id}", methods: methods{
		http.MethodGet: (*Handler).team, http.MethodPut: (*Handler).putTeam, http.MethodPatch: (*Handler).patchTeam}},
	{pattern: "teams/{team_id}/invitations/{$}", name: "teams/{team_id}/invitations", teamInPath: true, methods: methods{
		http.MethodGet: (*Handler).listInvitations, http.MethodPost: (*Handler).createInvitation}},
	{pattern: "teams/{team_id}/invitations/{id}/{$}", name: "teams/{team_id}/invitations/{id}", teamInPath: true, methods: methods{
		http.MethodGet: (*Handler).invitation, http.MethodDelete: (*Handler).deleteInvitation}},
	{pattern: "scim/Me/{$}", name: "scim/Me", throttled: true, scim: true, methods: methods{
		http.MethodGet: (*Handler).scimMe}},
}

type methods = map[string]func(h *Handler, w http.ResponseWriter, r *http.Request, c caller)

// Mount registers People's partner URLs on mux, each behind authenticate: the bearer
// middleware and the gates of /graphql, so that a partner's token is judged, rate-limited and
// logged the same way on both APIs. The OpenAPI document is public.
func (h *Handler) Mount(mux *http.ServeMux, authenticate func(http.Handler) http.Handler) {
	for _, rt := range routes {
		inner := authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, rt) }))
		mux.Handle(wire.PartnerPrefix+rt.pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rt.teamInPath {
				if _, err := uuid.Parse(r.PathValue("team_id")); err != nil {
					respondError(w, r, http.StatusNotFound, "Not found.")
					return
				}
			}
			inner.ServeHTTP(w, r)
		}))
	}
	mux.Handle("GET "+wire.PartnerPrefix+"openapi.json", OpenAPI())
}

// caller is the authenticated partner request: the principal and the store's actor for it.
type caller struct {
	auth.Principal
	actor store.Actor
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt route) {
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok || p.Method != auth.MethodBearer {
		// No Authorization header (a session cookie does not count here, as in People): the
		// bearer middleware let the request through anonymously.
		if !rt.scim { // People's SCIM views send no challenge
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		}
		respondError(w, r, http.StatusUnauthorized, "Authentication credentials were not provided.")
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	serve, ok := rt.methods[method]
	if !ok {
		allowed := make([]string, 0, len(rt.methods)+1)
		for m := range rt.methods {
			allowed = append(allowed, m)
		}
		if rt.methods[http.MethodGet] != nil {
			allowed = append(allowed, http.MethodHead)
		}
		slices.SortFunc(allowed, func(a, b string) int { return cmp.Compare(methodOrder[a], methodOrder[b]) })
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		respondError(w, r, http.StatusMethodNotAllowed, `Method "`+r.Method+`" not allowed.`)
		return
	}
	if rt.throttled && h.opts.Throttle != nil {
		if wait := h.opts.Throttle(r.Context(), rt.name); wait > 0 {
			secs := ratelimit.RetryAfter(wait) // as the operations layer says it in Retry-After
			respond(w, r, http.StatusTooManyRequests, wire.Error{Code: wire.CodeRateLimited, RetryAfter: secs,
				Message: "Request was throttled. Expected available in " + itoa(secs) + " seconds."})
			return
		}
	}
	serve(h, w, r, caller{Principal: p, actor: p.Actor()})
}

// methodOrder is the order of the methods in an Allow header, as DRF lists them.
var methodOrder = map[string]int{
	http.MethodGet: 1, http.MethodPost: 2, http.MethodPut: 3, http.MethodPatch: 4, http.MethodDelete: 5, http.MethodHead: 6,
}
