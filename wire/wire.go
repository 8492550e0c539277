// Package wire owns the shape in which the API answers with an error outside a GraphQL
// execution: a refused token, a cross-site request, a rate limit, a panic, the database out of
// reach. Every layer (auth's middlewares, the operations middleware, graph's transport) writes
// through Write, so that clients read one format, the one GraphQL responses use:
//
//	{"errors":[{"message":"…","extensions":{"code":"…","retryAfter":5,"requestId":"…"}}]}
//
// It imports none of our packages, so that auth and graph may both use it.
package wire

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// The codes written outside graph's error presenter. graph/errors.go names them too, for the
// errors of an operation.
const (
	CodeUnauthenticated  = "UNAUTHENTICATED"
	CodeForbidden        = "FORBIDDEN"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodeRateLimited      = "RATE_LIMITED"
	CodeInternal         = "INTERNAL"
	CodeUnavailable      = "UNAVAILABLE"
)

// RetryAfterUnavailable is the Retry-After, in seconds, of an UNAVAILABLE answer: about what a
// PostgreSQL restart or a failover takes, so that clients neither hammer nor give up.
const RetryAfterUnavailable = 5

// Error is one error as a client reads it.
type Error struct {
	Code    string // extensions.code
	Message string // for people: never SQL, a token or a stack
	// RetryAfter, in seconds, when not 0: extensions.retryAfter and the Retry-After header.
	RetryAfter int
	// RequestID names the request in the server's logs (extensions.requestId), for INTERNAL
	// and UNAVAILABLE answers that an operator may be asked about.
	RequestID string
}

type body struct {
	Errors [1]item `json:"errors"`
}

type item struct {
	Message    string     `json:"message"`
	Extensions extensions `json:"extensions"`
}

type extensions struct {
	Code       string `json:"code"`
	RetryAfter int    `json:"retryAfter,omitempty"`
	RequestID  string `json:"requestId,omitempty"`
}

// Body is e as a JSON response body.
func Body(e Error) []byte {
	b, _ := json.Marshal(body{[1]item{{e.Message, extensions{e.Code, e.RetryAfter, e.RequestID}}}}) // strings and ints: never fails
	return b
}

// Write answers with e alone, as status, never cached. Headers already set on w (such as
// WWW-Authenticate) are kept.
func Write(w http.ResponseWriter, status int, e Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(status)
	w.Write(append(Body(e), '\n'))
}

// Unavailable is the error of a request that found the database, or another service the
// answer needs, out of reach: the client may send it again after RetryAfterUnavailable.
func Unavailable(requestID string) Error {
	return Error{Code: CodeUnavailable, Message: "the service is unavailable: retry later", RetryAfter: RetryAfterUnavailable, RequestID: requestID}
}
