package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/store"
	"lasuite.fr/people/wire"
)

// Error codes in extensions.code.
const (
	CodeUnauthenticated = wire.CodeUnauthenticated
	CodeForbidden       = wire.CodeForbidden
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeConflict        = "CONFLICT"
	CodeInternal        = wire.CodeInternal
	// CodeUnavailable is the database out of reach (store.KindUnavailable): the answer is 503
	// with Retry-After, and the client may send the same request again, mutations included.
	CodeUnavailable = wire.CodeUnavailable
)

// RetryAfterUnavailable is the Retry-After, in seconds, of an UNAVAILABLE answer: about what
// a PostgreSQL restart or a failover takes.
const RetryAfterUnavailable = wire.RetryAfterUnavailable

// Error codes of requests refused before they run (graph/transport.go, graph/limits.go,
// graph/introspection.go). gqlgen's own GRAPHQL_PARSE_FAILED and GRAPHQL_VALIDATION_FAILED
// pass through unchanged.
const (
	CodeBadRequest             = "BAD_REQUEST"               // not a GraphQL-over-HTTP request: bad JSON, no query, a parameter of the wrong type
	CodeNotAcceptable          = "NOT_ACCEPTABLE"            // 406: Accept names neither JSON media type
	CodeUnsupportedMediaType   = "UNSUPPORTED_MEDIA_TYPE"    // 415: a POST body that is not application/json
	CodeMethodNotAllowed       = wire.CodeMethodNotAllowed   // 405: a mutation over GET, or a method other than GET and POST
	CodeRequestTooLarge        = "REQUEST_TOO_LARGE"         // 413: the body exceeds GRAPHQL_MAX_BODY_BYTES
	CodeOperationNotFound      = "OPERATION_NOT_FOUND"       // operationName names no operation of the document
	CodeOperationTooLarge      = "OPERATION_TOO_LARGE"       // the document exceeds GRAPHQL_MAX_OPERATION_BYTES
	CodeQueryTooDeep           = "QUERY_TOO_DEEP"            // fields nested deeper than GRAPHQL_MAX_DEPTH
	CodeQueryTooComplex        = "QUERY_TOO_COMPLEX"         // cost above GRAPHQL_MAX_COMPLEXITY
	CodeTooManyAliases         = "TOO_MANY_ALIASES"          // more aliases than GRAPHQL_MAX_ALIASES
	CodeIntrospectionDisabled  = "INTROSPECTION_DISABLED"    // __schema or __type refused by GRAPHQL_INTROSPECTION
	CodePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND" // Apollo's: send the query with its hash
)

var codes = map[store.Kind]string{
	store.KindNotFound: CodeNotFound, store.KindForbidden: CodeForbidden,
	store.KindInvalid: CodeBadUserInput, store.KindConflict: CodeConflict,
	store.KindLimited: CodeRateLimited,
}

// presentError is the only place where errors become extensions.code. store.Error carries a
// message written for clients; a database out of reach is UNAVAILABLE (the transport answers
// 503 with Retry-After); anything else is INTERNAL, logged for operators and answered
// with a fixed message: no SQL, constraint text, token or stack reaches a client.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		if _, ok := gqlErr.Extensions["code"]; ok {
			return gqlErr // parse, validation and complexity errors arrive classified
		}
		var e *store.Error
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			gqlErr.Message, gqlErr.Extensions = "authentication required", map[string]any{"code": CodeUnauthenticated}
		case errors.Is(err, auth.ErrMethodForbidden):
			gqlErr.Message, gqlErr.Extensions = err.Error(), map[string]any{"code": CodeForbidden}
		case store.KindOf(err) == store.KindUnavailable:
			log.ErrorContext(ctx, "database unavailable", "path", gqlErr.Path.String(), "err", err)
			gqlErr.Message, gqlErr.Extensions = "the service is unavailable: retry later", map[string]any{"code": CodeUnavailable}
		case errors.As(err, &e) && codes[e.Kind] != "":
			gqlErr.Message, gqlErr.Extensions = e.Message, map[string]any{"code": codes[e.Kind]}
			if e.Field != "" {
				gqlErr.Extensions["field"] = e.Field
			}
		default:
			log.ErrorContext(ctx, "resolver failed", "path", gqlErr.Path.String(), "err", err)
			gqlErr.Message, gqlErr.Extensions = "internal error", map[string]any{"code": CodeInternal}
		}
		return gqlErr
	}
}

// recoverPanic turns a panic in a resolver into INTERNAL, logged with its value and stack.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "resolver panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return errors.New("panic") // not a store.Error: presented as INTERNAL
	}
}

// badInput is a client error on one input field.
func badInput(field, msg string) error {
	return &store.Error{Kind: store.KindInvalid, Field: field, Message: msg}
}
