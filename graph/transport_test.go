package graph_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store/storetest"
)

const (
	mediaGQL  = "application/graphql-response+json"
	mediaJSON = "application/json"
)

// httpResult is an answer of the handler as a client sees it.
type httpResult struct {
	Status int
	Header http.Header
	Raw    map[string]json.RawMessage // the body's members: "data" is absent or present
	result
}

// httpReq describes one request to the handler.
type httpReq struct {
	method, accept, contentType string
	body                        string // POST body
	query                       url.Values
	as                          *auth.Principal
}

// post is an httpReq posting body as JSON, accepting accept ("" sends no Accept).
func post(accept, body string) httpReq {
	return httpReq{method: http.MethodPost, accept: accept, contentType: mediaJSON, body: body}
}

// jsonBody is a POST body with query and vars (none when nil).
func jsonBody(tb testing.TB, query string, vars map[string]any) string {
	tb.Helper()
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// serve runs one request through h and decodes the JSON answer.
func serve(tb testing.TB, h http.Handler, rq httpReq) httpResult {
	tb.Helper()
	target := "/graphql"
	if rq.query != nil {
		target += "?" + rq.query.Encode()
	}
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequestWithContext(tb.Context(), rq.method, target, body)
	if rq.accept != "" {
		r.Header.Set("Accept", rq.accept)
	}
	if rq.contentType != "" {
		r.Header.Set("Content-Type", rq.contentType)
	}
	if rq.as != nil {
		r = r.WithContext(auth.WithPrincipal(r.Context(), *rq.as))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := httpResult{Status: w.Code, Header: w.Header()}
	if err := json.Unmarshal(w.Body.Bytes(), &res.Raw); err != nil {
		tb.Fatalf("%s %s: the answer is not a JSON object: %v\n%s", rq.method, target, err, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &res.result); err != nil {
		tb.Fatalf("decode %s: %v", w.Body, err)
	}
	return res
}

// check compares an answer's status, first error code, data entry and media type.
func (r httpResult) check(tb testing.TB, status int, code string, hasData bool, media string) {
	tb.Helper()
	_, data := r.Raw["data"]
	if r.Status != status || r.Code() != code || data != hasData || !strings.HasPrefix(r.Header.Get("Content-Type"), media) {
		tb.Errorf("got %d %q data=%v %q, want %d %q data=%v %q (errors: %+v)", r.Status, r.Code(), data,
			r.Header.Get("Content-Type"), status, code, hasData, media, r.Errors)
	}
}

// GraphQL over HTTP, case by case: media type negotiation, malformed requests, and the status
// codes of each response media type.
func TestGraphQLOverHTTP(t *testing.T) {
	h := graph.NewHandler(storetest.Open(t), graph.Options{Settings: allFeatures})
	ok := `{"query":"{ __typename }"}`
	get := func(accept string, params ...string) httpReq {
		q := url.Values{}
		for i := 0; i+1 < len(params); i += 2 {
			q.Set(params[i], params[i+1])
		}
		return httpReq{method: http.MethodGet, accept: accept, query: q}
	}
	tests := []struct {
		name    string
		req     httpReq
		status  int
		code    string // first error's extensions.code; "" for none
		hasData bool
		media   string
	}{
		// Negotiation: no Accept and wildcards mean application/json (older clients).
		{"graphql-response+json", post(mediaGQL, ok), 200, "", true, mediaGQL},
		{"json", post(mediaJSON, ok), 200, "", true, mediaJSON},
		{"no Accept", post("", ok), 200, "", true, mediaJSON},
		{"wildcard", post("*/*", ok), 200, "", true, mediaJSON},
		{"preferred graphql-response+json", post(mediaGQL+", application/json;q=0.9", ok), 200, "", true, mediaGQL},
		{"preferred json", post("application/json, "+mediaGQL+";q=0.5", ok), 200, "", true, mediaJSON},
		{"graphql-response+json with a charset", post(mediaGQL+"; charset=utf-8", ok), 200, "", true, mediaGQL},
		{"unacceptable", post("text/html", ok), 406, graph.CodeNotAcceptable, false, mediaJSON},
		{"refused with q=0", post(mediaGQL+";q=0, text/html", ok), 406, graph.CodeNotAcceptable, false, mediaJSON},
		{"other charset", post("application/json; charset=iso-8859-1", ok), 406, graph.CodeNotAcceptable, false, mediaJSON},

		// Malformed requests are 400 (415 for the wrong body type) whatever the media type.
		{"body not JSON", httpReq{method: "POST", accept: mediaGQL, contentType: "text/plain", body: ok}, 415, graph.CodeUnsupportedMediaType, false, mediaGQL},
		{"no Content-Type", httpReq{method: "POST", accept: mediaGQL, body: ok}, 415, graph.CodeUnsupportedMediaType, false, mediaGQL},
		{"body in another charset", httpReq{method: "POST", contentType: "application/json; charset=latin1", body: ok}, 415, graph.CodeUnsupportedMediaType, false, mediaJSON},
		{"JSON with charset", httpReq{method: "POST", contentType: "application/json; charset=UTF-8", body: ok}, 200, "", true, mediaJSON},
		{"body as graphql-response+json (the CSRF rule allows it)", httpReq{method: "POST", accept: mediaGQL, contentType: mediaGQL, body: ok}, 200, "", true, mediaGQL},
		{"bad JSON", post(mediaJSON, `{"query": "{ __typ`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"bad JSON, graphql-response+json", post(mediaGQL, `{"query"`), 400, graph.CodeBadRequest, false, mediaGQL},
		{"data after the object", post(mediaJSON, ok+` {}`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"empty body", post(mediaJSON, ""), 400, graph.CodeBadRequest, false, mediaJSON},
		{"batch", post(mediaJSON, `[`+ok+`]`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"no query", post(mediaJSON, `{"qeury":"{ __typename }"}`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"null query", post(mediaJSON, `{"query":null}`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"query not a string", post(mediaJSON, `{"query":{"obj":"ect"}}`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"operationName not a string", post(mediaJSON, `{"query":"{ __typename }","operationName":false}`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"variables not an object", post(mediaJSON, `{"query":"{ __typename }","variables":"{}"}`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"variables a list", post(mediaGQL, `{"query":"{ __typename }","variables":["a"]}`), 400, graph.CodeBadRequest, false, mediaGQL},
		{"extensions not an object", post(mediaJSON, `{"query":"{ __typename }","extensions":0}`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"null members", post(mediaGQL, `{"query":"{ __typename }","operationName":null,"variables":null,"extensions":null}`), 200, "", true, mediaGQL},
		{"keys are case-sensitive", post(mediaJSON, `{"Query":"{ __typename }"}`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"method", httpReq{method: http.MethodPut, contentType: mediaJSON, body: ok}, 405, graph.CodeMethodNotAllowed, false, mediaJSON},

		// GraphQL request errors: 400 with graphql-response+json, 200 with application/json;
		// never a data entry.
		{"syntax error", post(mediaGQL, `{"query":"{"}`), 400, "GRAPHQL_PARSE_FAILED", false, mediaGQL},
		{"syntax error, json", post(mediaJSON, `{"query":"{"}`), 200, "GRAPHQL_PARSE_FAILED", false, mediaJSON},
		{"unknown field", post(mediaGQL, `{"query":"{ nope }"}`), 400, "GRAPHQL_VALIDATION_FAILED", false, mediaGQL},
		{"unknown field, json", post(mediaJSON, `{"query":"{ nope }"}`), 200, "GRAPHQL_VALIDATION_FAILED", false, mediaJSON},
		{"unknown operationName", post(mediaGQL, `{"query":"query A { __typename }","operationName":"B"}`), 400, graph.CodeOperationNotFound, false, mediaGQL},
		{"unknown operationName, json", post(mediaJSON, `{"query":"query A { __typename }","operationName":"B"}`), 200, graph.CodeOperationNotFound, false, mediaJSON},
		{"several operations, none chosen", post(mediaGQL, `{"query":"query A { __typename } query B { __typename }"}`), 400, graph.CodeOperationNotFound, false, mediaGQL},
		{"operationName chooses", post(mediaGQL, `{"query":"query A { __typename } query B { __typename }","operationName":"B"}`), 200, "", true, mediaGQL},
		{"variable of the wrong type", post(mediaGQL, `{"query":"query($n: Int!) { teams(first: $n) { totalCount } }","variables":{"n":"x"}}`), 400, graph.CodeBadUserInput, false, mediaGQL},
		{"missing variable, json", post(mediaJSON, `{"query":"query($id: ID!) { team(id: $id) { name } }","variables":{"id":null}}`), 200, graph.CodeBadUserInput, false, mediaJSON},

		// Execution errors: the operation ran, so 200 and a data entry (null here).
		{"field error", post(mediaGQL, `{"query":"{ me { id } }"}`), 200, graph.CodeUnauthenticated, true, mediaGQL},

		// GET: queries only.
		{"GET", get(mediaGQL, "query", "{ __typename }"), 200, "", true, mediaGQL},
		{"GET, bad variables", get(mediaJSON, "query", "{ __typename }", "variables", `{"n":`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"GET, extensions not an object", get(mediaJSON, "query", "{ __typename }", "extensions", `[]`), 400, graph.CodeBadRequest, false, mediaJSON},
		{"GET without query", get(mediaJSON), 400, graph.CodeBadRequest, false, mediaJSON},
		{"GET mutation", get(mediaGQL, "query", `mutation { deleteTeam(input: {id: "00000000-0000-0000-0000-000000000000"}) { deletedId } }`), 405, graph.CodeMethodNotAllowed, false, mediaGQL},
		{"GET choosing a mutation", get(mediaJSON, "query", `query Q { __typename } mutation M { __typename }`, "operationName", "M"), 405, graph.CodeMethodNotAllowed, false, mediaJSON},
		{"GET choosing the query", get(mediaJSON, "query", `query Q { __typename } mutation M { __typename }`, "operationName", "Q"), 200, "", true, mediaJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			serve(t, h, tt.req).check(t, tt.status, tt.code, tt.hasData, tt.media)
		})
	}
}

// A GET's variables reach the operation: the answer names the type each one asks for.
func TestGETVariables(t *testing.T) {
	h := graph.NewHandler(storetest.Open(t), graph.Options{Settings: allFeatures, Introspection: graph.IntrospectionOn})
	for _, name := range []string{"Team", "User"} {
		q := url.Values{"query": {"query($n: String!) { __type(name: $n) { name } }"}, "variables": {`{"n":"` + name + `"}`}}
		r := serve(t, h, httpReq{method: http.MethodGet, accept: mediaJSON, query: q})
		r.check(t, 200, "", true, mediaJSON)
		if got, want := string(r.Raw["data"]), `{"__type":{"name":"`+name+`"}}`; got != want {
			t.Errorf("GET with variables {n: %s}: data = %s, want %s", name, got, want)
		}
	}
}

func TestGraphQLOverHTTPHeaders(t *testing.T) {
	h := graph.NewHandler(storetest.Open(t), graph.Options{Settings: allFeatures})
	r := serve(t, h, post(mediaGQL, `{"query":"{ __typename }"}`))
	if got := r.Header.Get("Content-Type"); got != mediaGQL+"; charset=utf-8" {
		t.Errorf("Content-Type = %q, want %s; charset=utf-8", got, mediaGQL)
	}
	if !strings.Contains(r.Header.Get("Vary"), "Accept") {
		t.Errorf("Vary = %q: the answer depends on Accept", r.Header.Get("Vary"))
	}
	r = serve(t, h, httpReq{method: http.MethodGet, query: url.Values{"query": {"mutation { __typename }"}}})
	if r.Header.Get("Allow") != "POST" {
		t.Errorf("GET mutation: Allow = %q, want POST", r.Header.Get("Allow"))
	}
	r = serve(t, h, httpReq{method: http.MethodPost, contentType: "text/plain", body: "{}"})
	if r.Header.Get("Accept-Post") != mediaJSON {
		t.Errorf("415: Accept-Post = %q, want %s", r.Header.Get("Accept-Post"), mediaJSON)
	}
}

// The body limit answers 413 whether the client announces the length or streams the body.
func TestBodyLimit(t *testing.T) {
	h := graph.NewHandler(storetest.Open(t), graph.Options{Settings: allFeatures, Limits: graph.Limits{MaxBodyBytes: 2048},
		Introspection: graph.IntrospectionOn})
	vars := `{"s":"` + strings.Repeat("x", 2048) + `"}`
	body := `{"query":"query($s: String!) { __type(name: $s) { name } }","variables":` + vars + `}`
	for _, chunked := range []bool{false, true} {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/graphql", strings.NewReader(body))
		r.Header.Set("Content-Type", mediaJSON)
		if chunked {
			r.ContentLength = -1
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var res result
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusRequestEntityTooLarge || res.Code() != graph.CodeRequestTooLarge {
			t.Errorf("chunked=%v: %d %q, want 413 %s", chunked, w.Code, res.Code(), graph.CodeRequestTooLarge)
		}
	}
	small := `{"query":"query($s: String!) { __type(name: $s) { name } }","variables":{"s":"` + strings.Repeat("x", 1900) + `"}}`
	serve(t, h, post(mediaJSON, small)).check(t, 200, "", true, mediaJSON)
}
