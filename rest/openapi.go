package rest

import (
	_ "embed"
	"net/http"
)

// openAPI describes the partner REST API (OpenAPI 3). TestOpenAPI checks the real answers of
// every endpoint against it, so that it cannot drift from the code.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI serves the OpenAPI document of the partner REST API (GET
// /resource-server/v1.0/openapi.json), without authentication: it says nothing a partner's
// developer should not read.
func OpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(openAPI)
	})
}
