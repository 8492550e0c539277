package graph

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph/model"
	"lasuite.fr/people/store"
)

// Options configure the GraphQL handler.
type Options struct {
	Settings   Settings
	Log        *slog.Logger
	LoaderWait time.Duration // how long loaders gather keys before one query; 0 means 1ms
	Limits     Limits        // request limits (graph/limits.go); zero fields take DefaultLimits()
	// Introspection is who may query __schema and __type; the zero value allows staff only.
	Introspection Introspection
	// Observer logs, counts, traces and rate-limits operations (graph/observe.go); nil: none.
	Observer Observer
}

// persistedQueryCacheSize bounds the automatic persisted queries remembered, each at most
// Limits.MaxOperationBytes long.
const persistedQueryCacheSize = 1000

// publicFields are the root fields open without authentication. Every other root field must
// carry @auth (TestAuthDirectiveOnEveryRootField), and the handler refuses one that does not,
// so a field added without it is closed, not open.
var publicFields = map[string]bool{"config": true, "__schema": true, "__type": true, "__typename": true}

// NewHandler serves GraphQL over HTTP (POST, and GET for queries; graph/transport.go).
func NewHandler(s *store.Store, o Options) http.Handler {
	if o.LoaderWait <= 0 {
		o.LoaderWait = time.Millisecond
	}
	o.Limits = o.Limits.withDefaults()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{store: s, settings: o.Settings, log: o.Log}
	es := NewExecutableSchema(Config{Resolvers: r, Directives: DirectiveRoot{Auth: authDirective}})
	srv := handler.New(es)
	srv.AddTransport(transport.Options{})
	srv.AddTransport(httpTransport{maxBody: o.Limits.MaxBodyBytes})
	queries := lru.New[*ast.QueryDocument](1000)
	srv.SetQueryCache(queries)
	// In this order: the size before anything reads the document, persisted queries before the
	// shape of what they stand for; then, after gqlgen's validation, cost and introspection.
	srv.Use(operationSize{max: o.Limits.MaxOperationBytes})
	srv.Use(persistedQueries{extension.AutomaticPersistedQuery{Cache: lru.New[string](persistedQueryCacheSize)}})
	srv.Use(operationShape{limits: o.Limits, cache: queries})
	srv.Use(operationCost{max: o.Limits.MaxComplexity})
	srv.Use(introspectionPolicy{policy: o.Introspection, store: s, log: o.Log})
	if o.Observer != nil {
		srv.Use(observe{observer: o.Observer, schema: es.Schema()})
	}
	srv.SetErrorPresenter(presentError(o.Log))
	srv.SetRecoverFunc(recoverPanic(o.Log))
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		var actor store.Actor
		if p, ok := auth.PrincipalFrom(ctx); ok {
			actor = actorOf(p)
		}
		return next(context.WithValue(ctx, loadersKey{}, newLoaders(s, actor, o.LoaderWait)))
	})
	srv.AroundRootFields(func(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
		fc := graphql.GetRootFieldContext(ctx)
		if fc != nil && !publicFields[fc.Field.Name] && fc.Field.Definition.Directives.ForName("auth") == nil {
			graphql.AddError(ctx, auth.ErrUnauthenticated)
			return graphql.Null
		}
		return next(ctx)
	})
	return srv
}

// authDirective implements @auth(methods, staff). A staff field takes browser sessions only,
// whatever methods says, and the caller's staff status is read once per operation (loaders).
func authDirective(ctx context.Context, _ any, next graphql.Resolver, methods []model.AuthMethod, staff bool) (any, error) {
	ms := make([]auth.Method, len(methods))
	for i, m := range methods {
		ms[i] = authMethods[m]
	}
	if staff {
		ms = []auth.Method{auth.MethodSession}
	}
	if _, err := auth.Require(ctx, ms...); err != nil {
		return nil, err
	}
	if staff {
		if _, err := loadersFrom(ctx).staff(ctx); err != nil {
			return nil, err
		}
	}
	return next(ctx)
}

var authMethods = map[model.AuthMethod]auth.Method{
	model.AuthMethodSession: auth.MethodSession,
	model.AuthMethodBearer:  auth.MethodBearer,
}

// actorOf is the store's view of a principal: a bearer token acts through its service.
func actorOf(p auth.Principal) store.Actor { return p.Actor() }

// principal returns the caller of a field under @auth.
func principal(ctx context.Context) (auth.Principal, store.Actor) {
	p, _ := auth.PrincipalFrom(ctx)
	return p, actorOf(p)
}
