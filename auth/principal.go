// Package auth decides who the caller is: the Principal in the request context, and (with the
// sign-in and partner-service work) the OIDC login handlers and the bearer-token middleware.
// It imports store, and nothing from graph; nothing else defines who the caller is.
package auth

import (
	"context"
	"errors"
	"slices"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
)

// Method is how a caller proved who they are.
type Method string

const (
	MethodSession Method = "session" // a browser session opened by OIDC login (cookie)
	MethodBearer  Method = "bearer"  // a partner service's introspected access token
)

// Principal is the caller: a user logged in through the OIDC cookie, or a service provider
// presenting a bearer token on a user's behalf. It never holds the token.
type Principal struct {
	UserID   uuid.UUID // users.id, resolved from the OIDC sub at login or introspection
	Method   Method    // MethodSession (cookie) or MethodBearer (partner service)
	Audience string    // client_id of the calling service provider; empty for cookie logins
	Scopes   []string  // granted scopes of a bearer token
	// ServiceProviderID is service_providers.id for Audience, set by the bearer middleware.
	ServiceProviderID uuid.UUID
}

// Actor is the store's view of p, for every API alike (GraphQL, the partner REST API): a
// bearer token acts through its service.
func (p Principal) Actor() store.Actor {
	a := store.Actor{UserID: p.UserID, Method: actorMethods[p.Method]}
	if p.Method == MethodBearer {
		a.ServiceProviderID = p.ServiceProviderID
		if a.ServiceProviderID == uuid.Nil {
			a.ServiceProviderID = uuid.Max // fail closed: a token without a known service sees no team
		}
	}
	return a
}

var actorMethods = map[Method]store.ActorMethod{
	MethodSession: store.ActorSession,
	MethodBearer:  store.ActorBearer,
}

type principalKey struct{}

// WithPrincipal returns a context carrying p. Only the session and bearer middlewares, and
// tests, call it: no header, cookie or parameter lets a client choose a user.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller, if the request is authenticated.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.UserID != uuid.Nil
}

var (
	// ErrUnauthenticated means the operation needs a caller and there is none.
	ErrUnauthenticated = errors.New("authentication required")
	// ErrMethodForbidden means the caller authenticated in a way this operation does not
	// accept, such as a partner service's token on a session-only operation.
	ErrMethodForbidden = errors.New("this operation is not available with this authentication method")
)

// Require returns the caller when they authenticated with one of methods (MethodSession when
// none is given). It is the body of the @auth directive.
func Require(ctx context.Context, methods ...Method) (Principal, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		noteUnauthenticated(ctx) // the bearer middleware then answers 401 (RFC 6750)
		return Principal{}, ErrUnauthenticated
	}
	if len(methods) == 0 {
		methods = []Method{MethodSession}
	}
	if !slices.Contains(methods, p.Method) {
		return Principal{}, ErrMethodForbidden
	}
	return p, nil
}
