package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lasuite.fr/people/graph"
	"lasuite.fr/people/store/storetest"
)

// auditDir holds the graphql-http audit script and its pinned dependencies.
const auditDir = ".ci/graphql-http-audit"

// TestGraphQLOverHTTPAudit runs graphql-http's server audit (the GraphQL-over-HTTP
// specification's reference checks) against the whole server, through CORS, the bearer and
// session middlewares and CSRF, and fails on any failed MUST. Failed SHOULDs and MAYs are
// logged. The audit queries __type, so introspection is on; its policy has tests of its own.
func TestGraphQLOverHTTPAudit(t *testing.T) {
	node, npm := lookPath(t, "node"), lookPath(t, "npm")
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "audit.mjs"} {
		b, err := os.ReadFile(filepath.Join(auditDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in a copy of %s: %v\n%s", auditDir, err, out)
	}

	base := startServer(t, storetest.EmptyDatabase(t), map[string]string{"GRAPHQL_INTROSPECTION": "on"})
	audit := exec.CommandContext(ctx, node, "audit.mjs", base+"/graphql")
	audit.Dir = dir
	out, err := audit.CombinedOutput()
	var results int
	for line := range strings.Lines(string(out)) {
		status, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch status {
		case "ok":
			results++
		case "error":
			results++
			t.Errorf("failed MUST: %s", rest)
		case "warn", "notice":
			results++
			t.Logf("failed %s: %s", map[string]string{"warn": "SHOULD", "notice": "MAY"}[status], rest)
		default:
			t.Log(strings.TrimSpace(line))
		}
	}
	if exit, ok := err.(*exec.ExitError); err != nil && (!ok || exit.ExitCode() != 1) {
		t.Fatalf("the audit did not run: %v\n%s", err, out)
	}
	if results < 50 {
		t.Errorf("the audit reported %d results, want the whole suite (over 50):\n%s", results, out)
	}
}

// lookPath finds a program that make test expects on the machine, or fails saying so.
func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("this test needs %s (Node.js 20 or later with npm): %v", name, err)
	}
	return p
}

// send makes one request to the whole server and returns its status, headers and body.
func send(t *testing.T, method, url, accept, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// The limits and the protocol through the whole chain, configured by the environment: the body
// limit answers 413 (http.MaxBytesHandler used to turn into gqlgen's 400), the bearer
// middleware still turns an anonymous refusal into 401, CSRF still answers 405 to a mutation
// over GET, and production refuses anonymous introspection.
func TestServeGraphQLLimits(t *testing.T) {
	base := startServer(t, storetest.EmptyDatabase(t), map[string]string{"GRAPHQL_MAX_BODY_BYTES": "4096", "GRAPHQL_MAX_OPERATION_BYTES": "1024", "GRAPHQL_MAX_DEPTH": "2"})
	const gqlResponse = "application/graphql-response+json"
	code := func(body string) string {
		var out struct {
			Errors []struct{ Extensions struct{ Code string } }
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil || len(out.Errors) == 0 {
			return ""
		}
		return out.Errors[0].Extensions.Code
	}
	big := `{"query":"{ __typename }","variables":{"s":"` + strings.Repeat("x", 5000) + `"}}`
	tests := []struct {
		name, method, path, accept, body string
		status                           int
		code                             string
	}{
		{"body over the limit", http.MethodPost, "/graphql", "", big, http.StatusRequestEntityTooLarge, graph.CodeRequestTooLarge},
		{"depth", http.MethodPost, "/graphql", gqlResponse, `{"query":"{ me { organization { name } } }"}`, http.StatusBadRequest, graph.CodeQueryTooDeep},
		{"anonymous on @auth", http.MethodPost, "/graphql", gqlResponse, `{"query":"{ me { id } }"}`, http.StatusUnauthorized, graph.CodeUnauthenticated},
		{"mutation over GET", http.MethodGet, "/graphql?query=" + url.QueryEscape("mutation { __typename }"), gqlResponse, "", http.StatusMethodNotAllowed, graph.CodeMethodNotAllowed},
		{"anonymous introspection", http.MethodPost, "/graphql", gqlResponse, `{"query":"{ __schema { queryType { name } } }"}`, http.StatusBadRequest, graph.CodeIntrospectionDisabled},
		{"not acceptable", http.MethodPost, "/graphql", "text/html", `{"query":"{ __typename }"}`, http.StatusNotAcceptable, graph.CodeNotAcceptable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := send(t, tt.method, base+tt.path, tt.accept, tt.body)
			if status != tt.status || code(body) != tt.code {
				t.Errorf("%d %s, want %d %s", status, body, tt.status, tt.code)
			}
			if status == http.StatusUnauthorized && !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %v", header)
			}
		})
	}
}

func TestGraphQLConfig(t *testing.T) {
	c, err := parseConfig(env(map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db"}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(graph.DefaultLimits(), c.GraphQL.limits()); diff != "" {
		t.Errorf("default limits (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		value       string
		development bool
		want        graph.Introspection
	}{
		{"", false, graph.IntrospectionStaff},
		{"auto", true, graph.IntrospectionOn},
		{"on", false, graph.IntrospectionOn},
		{"off", true, graph.IntrospectionOff},
	} {
		g := GraphQLSettings{Introspection: tt.value}
		if tt.value == "" {
			g = c.GraphQL
		}
		if got := g.introspection(tt.development); got != tt.want {
			t.Errorf("GRAPHQL_INTROSPECTION=%q, development %v: %v, want %v", tt.value, tt.development, got, tt.want)
		}
	}
	_, err = parseConfig(env(map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db", "GRAPHQL_INTROSPECTION": "staff",
		"GRAPHQL_MAX_DEPTH": "0", "GRAPHQL_MAX_INTROSPECTION_DEPTH": "101", "GRAPHQL_MAX_COMPLEXITY": "lots", "GRAPHQL_MAX_ALIASES": "-1", "GRAPHQL_MAX_OPERATION_BYTES": "65536",
		"GRAPHQL_MAX_BODY_BYTES": "32768"}))
	for _, key := range []string{"GRAPHQL_INTROSPECTION", "GRAPHQL_MAX_DEPTH", "GRAPHQL_MAX_INTROSPECTION_DEPTH", "GRAPHQL_MAX_COMPLEXITY", "GRAPHQL_MAX_ALIASES", "GRAPHQL_MAX_BODY_BYTES (32768) must be at least"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}
