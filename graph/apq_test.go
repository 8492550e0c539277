package graph_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"lasuite.fr/people/graph"
	"lasuite.fr/people/store/storetest"
)

// persisted is a POST body with Apollo's persistedQuery extension, and the query unless "".
func persisted(tb testing.TB, query, hash string) string {
	tb.Helper()
	body := map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}}
	if query != "" {
		body["query"] = query
	}
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Automatic persisted queries: a hash alone is unknown until the query was sent with it once;
// a hash that does not match its query registers nothing.
func TestAutomaticPersistedQueries(t *testing.T) {
	h := graph.NewHandler(storetest.Open(t), graph.Options{Settings: allFeatures})
	query := `query Release { config { release } }`
	hash := sha(query)

	r := serve(t, h, post(mediaGQL, persisted(t, "", hash)))
	r.check(t, http.StatusBadRequest, graph.CodePersistedQueryNotFound, false, mediaGQL)
	if len(r.Errors) != 1 || r.Errors[0].Message != "PersistedQueryNotFound" {
		t.Errorf("errors = %+v, want Apollo's PersistedQueryNotFound, which its clients look for", r.Errors)
	}
	serve(t, h, post(mediaJSON, persisted(t, "", hash))).check(t, http.StatusOK, graph.CodePersistedQueryNotFound, false, mediaJSON)

	other := `{ config { commit } }`
	serve(t, h, post(mediaGQL, persisted(t, other, hash))).check(t, http.StatusBadRequest, graph.CodeBadRequest, false, mediaGQL)
	serve(t, h, post(mediaGQL, persisted(t, "", hash))).check(t, http.StatusBadRequest, graph.CodePersistedQueryNotFound, false, mediaGQL)

	serve(t, h, post(mediaGQL, persisted(t, query, hash))).check(t, http.StatusOK, "", true, mediaGQL)
	r = serve(t, h, post(mediaGQL, persisted(t, "", hash)))
	r.check(t, http.StatusOK, "", true, mediaGQL)
	if string(r.Data) != `{"config":{"release":"test"}}` {
		t.Errorf("data = %s", r.Data)
	}
	get := url.Values{"extensions": {`{"persistedQuery":{"version":1,"sha256Hash":"` + hash + `"}}`}}
	serve(t, h, httpReq{method: http.MethodGet, accept: mediaGQL, query: get}).check(t, http.StatusOK, "", true, mediaGQL)

	serve(t, h, post(mediaJSON, `{"extensions":{"persistedQuery":{"version":2,"sha256Hash":"`+hash+`"}}}`)).
		check(t, http.StatusOK, graph.CodeBadRequest, false, mediaJSON)
}

// A persisted mutation still needs POST.
func TestPersistedMutationOverGET(t *testing.T) {
	h := graph.NewHandler(storetest.Open(t), graph.Options{Settings: allFeatures})
	mutation := `mutation { __typename }`
	serve(t, h, post(mediaJSON, persisted(t, mutation, sha(mutation)))).check(t, http.StatusOK, "", true, mediaJSON)
	get := url.Values{"extensions": {`{"persistedQuery":{"version":1,"sha256Hash":"` + sha(mutation) + `"}}`}}
	serve(t, h, httpReq{method: http.MethodGet, query: get}).check(t, http.StatusMethodNotAllowed, graph.CodeMethodNotAllowed, false, mediaJSON)
}

// The document a hash stands for is held to the operation size limit when it is registered.
func TestPersistedQueryWithinOperationSize(t *testing.T) {
	h := graph.NewHandler(storetest.Open(t), graph.Options{Settings: allFeatures, Limits: graph.Limits{MaxOperationBytes: 20}})
	query := `{ config { release } }`
	serve(t, h, post(mediaJSON, persisted(t, query, sha(query)))).check(t, http.StatusOK, graph.CodeOperationTooLarge, false, mediaJSON)
	serve(t, h, post(mediaJSON, persisted(t, "", sha(query)))).check(t, http.StatusOK, graph.CodePersistedQueryNotFound, false, mediaJSON)
}
