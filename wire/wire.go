// Package wire owns the shape in which the API answers with an error outside a GraphQL
// execution: a refused token, a cross-site request, a rate limit, a panic, the database out of
// reach. Every layer (auth's middlewares, the operations middleware, graph's transport) writes
// through Write, so that clients read one format, the one GraphQL responses use:
//
//	{"errors":[{"message":"…","extensions":{"code":"…","retryAfter":5,"requestId":"…"}}]}
//
// People's partner REST API (package rest, under PartnerPrefix) answers in People's shapes
// instead, which its partner services already read: {"detail":"…"}, and SCIM's error object on
// its SCIM paths. Respond picks the shape from the request's path, so that every layer, panics
// and rate limits included, answers a partner as People would.
//
// It imports none of our packages, so that auth and graph may both use it.
package wire

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
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

// PartnerPrefix is where People's resource-server REST API lives (package rest): errors below
// it are written as People writes them.
const PartnerPrefix = "/resource-server/v1.0/"

// SCIMPrefix is the part of the partner API that speaks SCIM, whose errors are SCIM's.
const SCIMPrefix = PartnerPrefix + "scim/"

// SCIMContentType is the media type of People's SCIM answers, errors included: People's own
// spelling (SCIM says application/scim+json), which its partners already accept.
const SCIMContentType = "application/json+scim"

// Respond is Write in the shape r's client reads: People's {"detail": message} on the partner
// REST API, SCIM's error object on its SCIM paths, GraphQL's errors array anywhere else. The
// status, Retry-After and the headers already set are the same in every shape.
func Respond(w http.ResponseWriter, r *http.Request, status int, e Error) {
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, SCIMPrefix):
		writeBody(w, status, e, SCIMContentType, SCIMErrorBody(status, e.Message))
	case strings.HasPrefix(path, PartnerPrefix):
		writeBody(w, status, e, "application/json", DetailBody(e.Message))
	default:
		Write(w, status, e)
	}
}

// DetailBody is People's (Django REST framework's) error body: {"detail": message}.
func DetailBody(message string) []byte {
	b, _ := json.Marshal(struct {
		Detail string `json:"detail"`
	}{message}) // a string: never fails
	return b
}

// SCIMErrorBody is the SCIM error object (RFC 7644 §3.12) as People writes it: the status as a
// string.
func SCIMErrorBody(status int, detail string) []byte {
	b, _ := json.Marshal(struct {
		Schemas []string `json:"schemas"`
		Status  string   `json:"status"`
		Detail  string   `json:"detail"`
	}{[]string{"urn:ietf:params:scim:api:messages:2.0:Error"}, strconv.Itoa(status), detail})
	return b
}

func writeBody(w http.ResponseWriter, status int, e Error, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(status)
	w.Write(body)
}

// Unavailable is the error of a request that found the database, or another service the
// answer needs, out of reach: the client may send it again after RetryAfterUnavailable.
func Unavailable(requestID string) Error {
	return Error{Code: CodeUnavailable, Message: "the service is unavailable: retry later", RetryAfter: RetryAfterUnavailable, RequestID: requestID}
}
