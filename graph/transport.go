package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"lasuite.fr/people/wire"
)

// The two response media types of GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/).
const (
	mediaGraphQLResponse = "application/graphql-response+json"
	mediaJSON            = "application/json"
)

// httpTransport serves GraphQL over HTTP as the specification asks, where gqlgen's GET and
// POST transports do not: Accept negotiation with 406, 415 for a body that is not JSON, 413
// for one over the limit, strict parameter types, and the status codes of each media type.
//
//   - application/graphql-response+json: a request refused before it runs (malformed, parse,
//     validation, variables, limits) is 400 with no data entry; one that ran is 200.
//   - application/json, for older clients: malformed requests are 400 as well, but a
//     well-formed one is 200 whatever its GraphQL errors, since such clients may not read the
//     body of a 4xx.
//
// The status is written after the operation ran, so that auth's challenge writer can still
// turn an anonymous request's 200 into 401.
type httpTransport struct {
	maxBody int64
}

var _ graphql.Transport = httpTransport{}

// Supports takes every request but preflights and HEAD (transport.Options) and WebSocket
// upgrades, so that a wrong method or content type gets a GraphQL answer with the right
// status rather than gqlgen's "transport not supported".
func (t httpTransport) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && r.Method != http.MethodOptions && r.Method != http.MethodHead
}

// requestError is a request refused before GraphQL sees it.
type requestError struct {
	status        int
	code, message string
}

func badRequest(msg string) *requestError {
	return &requestError{http.StatusBadRequest, CodeBadRequest, msg}
}

func (t httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	w.Header().Add("Vary", "Accept")
	media, ok := negotiate(r.Header.Values("Accept"))
	if !ok {
		refuse(w, r, exec, mediaJSON, &requestError{http.StatusNotAcceptable, CodeNotAcceptable,
			"Accept must allow application/graphql-response+json or application/json"})
		return
	}
	start := graphql.Now()
	var params *graphql.RawParams
	var rerr *requestError
	switch r.Method {
	case http.MethodGet:
		params, rerr = paramsFromURL(r.URL.RawQuery)
	case http.MethodPost:
		params, rerr = t.paramsFromBody(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		rerr = &requestError{http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use GET for queries or POST"}
	}
	if rerr != nil {
		refuse(w, r, exec, media, rerr)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		classify(opCtx, errs)
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
		write(w, media, refusedStatus(media, resp.Errors), resp)
		return
	}
	if r.Method == http.MethodGet && opCtx.Operation.Operation != ast.Query {
		// GraphQL over HTTP: 405, and nothing runs. auth.CSRF answers this first on the
		// server; this keeps the rule where the operation is known (persisted queries too).
		w.Header().Set("Allow", "POST")
		refuse(w, r, exec, media, &requestError{http.StatusMethodNotAllowed, CodeMethodNotAllowed, "mutations must be sent with POST"})
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	resp := responses(ctx)
	if resp == nil {
		return // the client went away
	}
	status := http.StatusOK
	if resp.Data == nil { // nothing ran: a request error after all
		status = refusedStatus(media, resp.Errors)
	} else if unavailable(resp.Errors) {
		status = http.StatusServiceUnavailable
	}
	write(w, media, status, resp)
}

// unavailable reports whether one of errs is UNAVAILABLE. The whole answer is then 503 with
// Retry-After, whatever else ran: a client told to retry retries the operation, not a field.
func unavailable(errs gqlerror.List) bool {
	for _, e := range errs {
		if e.Extensions["code"] == CodeUnavailable {
			return true
		}
	}
	return false
}

// refuse answers a request that GraphQL never saw. The error still goes through the executor,
// so that response middleware (logs, metrics) sees every answer.
func refuse(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, media string, e *requestError) {
	err := &gqlerror.Error{Message: e.message, Extensions: map[string]any{"code": e.code}}
	write(w, media, e.status, exec.DispatchError(r.Context(), gqlerror.List{err}))
}

// refusedStatus is the status of a GraphQL request error: 400 with graphql-response+json, 200
// with application/json; 503 or 500 when the refusal is our failure (an introspection check
// that could not reach the database).
func refusedStatus(media string, errs gqlerror.List) int {
	if unavailable(errs) {
		return http.StatusServiceUnavailable
	}
	for _, e := range errs {
		if e.Extensions["code"] == CodeInternal {
			return http.StatusInternalServerError
		}
	}
	if media == mediaGraphQLResponse {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// classify replaces gqlgen's GRAPHQL_VALIDATION_FAILED where it means something a client can
// act on: an operationName that names no operation, and variables that do not fit their types.
// The executor reports both after a successful parse and validation (opCtx.Doc is set), and
// before extensions run, whose errors carry codes of their own.
func classify(opCtx *graphql.OperationContext, errs gqlerror.List) {
	if opCtx == nil || opCtx.Doc == nil || len(errs) != 1 || errs[0].Extensions["code"] != errcode.ValidationFailed {
		return
	}
	e := errs[0]
	switch {
	case opCtx.Operation == nil && opCtx.OperationName == "":
		e.Message, e.Extensions["code"] = "the document has several operations: choose one with operationName", CodeOperationNotFound
	case opCtx.Operation == nil:
		e.Message, e.Extensions["code"] = "no operation named "+strconv.Quote(opCtx.OperationName)+" in the document", CodeOperationNotFound
	default:
		e.Extensions["code"] = CodeBadUserInput
	}
}

// write answers with resp, its data left out when nothing ran, as GraphQL over HTTP asks of
// request errors; an operation that ran and failed keeps "data": null. The data is gqlgen's
// output, JSON already, and is copied as it is: encoding/json would check and compact every byte
// of it again. Errors and extensions are encoded by encoding/json.
func write(w http.ResponseWriter, media string, status int, resp *graphql.Response) {
	buf := buffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			buf.Reset()
			buffers.Put(buf)
		}
	}()
	if err := encodeResponse(buf, resp); err != nil { // a value JSON cannot hold: a bug, not the client's
		status = http.StatusInternalServerError
		buf.Reset()
		buf.Write(wire.Body(wire.Error{Code: CodeInternal, Message: "internal error"}))
	}
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(wire.RetryAfterUnavailable))
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// encodeResponse writes resp as encoding/json would write struct{Errors, Data, Extensions} with
// omitempty on each.
func encodeResponse(buf *bytes.Buffer, resp *graphql.Response) error {
	buf.WriteByte('{')
	sep := ""
	if len(resp.Errors) > 0 {
		b, err := json.Marshal(resp.Errors)
		if err != nil {
			return err
		}
		buf.WriteString(`"errors":`)
		buf.Write(b)
		sep = ","
	}
	if len(resp.Data) > 0 {
		buf.WriteString(sep + `"data":`)
		buf.Write(resp.Data)
		sep = ","
	}
	if len(resp.Extensions) > 0 {
		b, err := json.Marshal(resp.Extensions)
		if err != nil {
			return err
		}
		buf.WriteString(sep + `"extensions":`)
		buf.Write(b)
	}
	buf.WriteByte('}')
	return nil
}

// buffers hold responses being written; one grown past maxPooledBuffer (a large page) is left
// to the garbage collector rather than kept.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 64 << 10

// negotiate picks the response media type from Accept headers. No Accept means
// application/json (the specification's rule for older clients), and so does a wildcard;
// graphql-response+json is chosen when named with a quality at least that of JSON. ok is false
// when neither is acceptable.
func negotiate(accept []string) (media string, ok bool) {
	if len(accept) == 0 {
		return mediaJSON, true
	}
	var gqlQ, jsonQ float64 = -1, -1 // best quality of each; -1: not matched by any range
	var gqlExact bool
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
				continue // we only speak UTF-8
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
					continue
				}
			}
			switch mt {
			case mediaGraphQLResponse:
				gqlQ, gqlExact = q, true
			case mediaJSON:
				jsonQ = q
			case "application/*", "*/*":
				// A wildcard only sets the quality of types not named explicitly.
				if !gqlExact {
					gqlQ = max(gqlQ, q)
				}
				jsonQ = max(jsonQ, q)
			}
		}
	}
	switch {
	case gqlExact && gqlQ > 0 && gqlQ >= jsonQ:
		return mediaGraphQLResponse, true
	case jsonQ > 0:
		return mediaJSON, true
	case gqlQ > 0:
		return mediaGraphQLResponse, true
	}
	return "", false
}

// paramsFromURL reads a GET request's parameters; variables and extensions are JSON objects.
func paramsFromURL(rawQuery string) (*graphql.RawParams, *requestError) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, badRequest("the URL's query string is malformed")
	}
	p := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName")}
	for _, f := range []struct {
		name string
		into *map[string]any
	}{{"variables", &p.Variables}, {"extensions", &p.Extensions}} {
		if v := q.Get(f.name); v != "" {
			if err := decodeObject(json.RawMessage(v), f.into); err != nil {
				return nil, badRequest(f.name + " must be a JSON object")
			}
		}
	}
	if p.Query == "" && p.Extensions["persistedQuery"] == nil {
		return nil, badRequest("the request has no query")
	}
	return p, nil
}

// paramsFromBody reads a POST request's JSON body, at most maxBody bytes of it.
func (t httpTransport) paramsFromBody(w http.ResponseWriter, r *http.Request) (*graphql.RawParams, *requestError) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	// The response type is accepted for the body too, as the CSRF rule of session requests does.
	if err != nil || (mt != mediaJSON && mt != mediaGraphQLResponse) || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		w.Header().Set("Accept-Post", mediaJSON)
		return nil, &requestError{http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "the body must be Content-Type: application/json"}
	}
	tooLarge := func() *requestError {
		return &requestError{http.StatusRequestEntityTooLarge, CodeRequestTooLarge,
			"the request body exceeds " + strconv.FormatInt(t.maxBody, 10) + " bytes"}
	}
	if r.ContentLength > t.maxBody {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, t.maxBody))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, tooLarge()
	} else if err != nil {
		return nil, badRequest("the request body could not be read")
	}
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return nil, badRequest("the request body is empty")
	}
	// The members stay raw (json.Unmarshal is enough: numbers are not decoded here); variables
	// and extensions are decoded below with json.Number.
	var fields map[string]json.RawMessage
	if b[0] != '{' || json.Unmarshal(b, &fields) != nil {
		if b[0] == '[' {
			return nil, badRequest("batched operations are not supported: send one operation per request")
		}
		return nil, badRequest("the request body must be a JSON object")
	}
	p := &graphql.RawParams{}
	if rerr := stringParam(fields, "query", &p.Query); rerr != nil {
		return nil, rerr
	}
	if rerr := stringParam(fields, "operationName", &p.OperationName); rerr != nil {
		return nil, rerr
	}
	for _, f := range []struct {
		name string
		into *map[string]any
	}{{"variables", &p.Variables}, {"extensions", &p.Extensions}} {
		if v, ok := fields[f.name]; ok && string(v) != "null" {
			if err := decodeObject(v, f.into); err != nil {
				return nil, badRequest(f.name + " must be an object")
			}
		}
	}
	if p.Query == "" && p.Extensions["persistedQuery"] == nil {
		return nil, badRequest("the request has no query")
	}
	return p, nil
}

// stringParam reads an optional string member; null is absent.
func stringParam(fields map[string]json.RawMessage, name string, into *string) *requestError {
	v, ok := fields[name]
	if !ok || string(v) == "null" {
		return nil
	}
	if err := json.Unmarshal(v, into); err != nil {
		return badRequest(name + " must be a string")
	}
	return nil
}

// decodeObject decodes one JSON object and nothing after it. Numbers stay json.Number, as
// gqlgen's coercion of variables expects.
func decodeObject[T any](b []byte, into *T) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not an object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(into); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the object")
	}
	return nil
}
