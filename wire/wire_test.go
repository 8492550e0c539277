package wire_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"lasuite.fr/people/wire"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name   string
		status int
		err    wire.Error
		body   string
		retry  string // Retry-After
	}{
		{"code and message", http.StatusForbidden, wire.Error{Code: wire.CodeForbidden, Message: "no"},
			`{"errors":[{"message":"no","extensions":{"code":"FORBIDDEN"}}]}`, ""},
		{"retry after", http.StatusTooManyRequests, wire.Error{Code: wire.CodeRateLimited, Message: "wait", RetryAfter: 7},
			`{"errors":[{"message":"wait","extensions":{"code":"RATE_LIMITED","retryAfter":7}}]}`, "7"},
		{"unavailable with a request id", http.StatusServiceUnavailable, wire.Unavailable("r1"),
			`{"errors":[{"message":"the service is unavailable: retry later","extensions":{"code":"UNAVAILABLE","retryAfter":5,"requestId":"r1"}}]}`, "5"},
		{"a message JSON must escape", http.StatusUnauthorized, wire.Error{Code: wire.CodeUnauthenticated, Message: "\"quoted\" <b>"},
			`{"errors":[{"message":"\"quoted\" \u003cb\u003e","extensions":{"code":"UNAUTHENTICATED"}}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set("WWW-Authenticate", "Bearer") // set before: kept
			wire.Write(w, tt.status, tt.err)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			if diff := cmp.Diff(tt.body+"\n", w.Body.String()); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			var v any
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Errorf("body is not JSON: %v", err)
			}
			h := w.Header()
			if h.Get("Content-Type") != "application/json; charset=utf-8" || h.Get("Cache-Control") != "no-store" ||
				h.Get("Retry-After") != tt.retry || h.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("headers %v", h)
			}
		})
	}
}

// TestRespond: the partner REST API's paths answer in People's shapes, every other path in
// GraphQL's; status, Retry-After and earlier headers are the same in each.
func TestRespond(t *testing.T) {
	e := wire.Error{Code: wire.CodeRateLimited, Message: "wait", RetryAfter: 3}
	tests := []struct{ path, contentType, body string }{
		{"/graphql", "application/json; charset=utf-8", `{"errors":[{"message":"wait","extensions":{"code":"RATE_LIMITED","retryAfter":3}}]}` + "\n"},
		{"/resource-server/v1.0/teams/", "application/json", `{"detail":"wait"}`},
		{"/resource-server/v1.0/scim/Me/", "application/json+scim", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"429","detail":"wait"}`},
		{"/resource-server/v1.0", "application/json; charset=utf-8", `{"errors":[{"message":"wait","extensions":{"code":"RATE_LIMITED","retryAfter":3}}]}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set("WWW-Authenticate", "Bearer")
			wire.Respond(w, httptest.NewRequest(http.MethodGet, tt.path, nil), http.StatusTooManyRequests, e)
			h := w.Header()
			if w.Code != http.StatusTooManyRequests || w.Body.String() != tt.body || h.Get("Content-Type") != tt.contentType ||
				h.Get("Retry-After") != "3" || h.Get("Cache-Control") != "no-store" || h.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("status %d, headers %v, body %s", w.Code, h, w.Body)
			}
		})
	}
}
