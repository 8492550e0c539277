package graph_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// The benchmark's W1 and W3 (bench/workload.go) through the handler alone, over the test
// database: allocations per request of the GraphQL side and the store together, without the
// HTTP server, the session middleware or a load generator sharing the CPU. `make bench` is the
// measure; these are for profiling a change (go test -run - -bench . -benchmem ./graph/).

const (
	benchW1 = `query W1($first: Int!, $accesses: Int!) { teams(first: $first) { nodes { id name ` +
		`accesses(first: $accesses) { nodes { role user { name email } } } } } }`
	benchW2 = `query W2($search: String!, $first: Int!) { users(search: $search, first: $first) { nodes { id name email } } }`
	benchW3 = `query W3($id: ID!, $accesses: Int!) { team(id: $id) { id name accesses(first: $accesses) { nodes { role user { name email } } } } }`
)

func BenchmarkHandler(b *testing.B) {
	s := storetest.Open(b)
	org := storetest.Organization(b, s)
	prefix := "bench" + storetest.Unique()
	var n int
	member := func() uuid.UUID { // a colleague whose name W2 finds
		n++
		return storetest.User(b, s, org, storetest.WithName(fmt.Sprintf("%s %d", prefix, n))).ID
	}
	viewer := member()
	var last uuid.UUID
	for i := range 20 {
		last = storetest.Team(b, s, org, fmt.Sprintf("Team %d %s", i, storetest.Unique()))
		storetest.Access(b, s, last, viewer, store.RoleOwner)
		for range 9 {
			storetest.Access(b, s, last, member(), store.RoleMember)
		}
	}
	for range 40 {
		storetest.Access(b, s, last, member(), store.RoleMember)
	}
	h := graph.NewHandler(s, graph.Options{Settings: allFeatures, LoaderWait: time.Millisecond})
	for _, w := range []struct{ name, body string }{
		{"W1", `{"query":` + quote(benchW1) + `,"variables":{"first":20,"accesses":10}}`},
		{"W2", `{"query":` + quote(benchW2) + `,"variables":{"search":"` + prefix + `","first":20}}`},
		{"W3", `{"query":` + quote(benchW3) + `,"variables":{"id":"` + last.String() + `","accesses":50}}`},
	} {
		b.Run(w.name, func(b *testing.B) {
			ctx := auth.WithPrincipal(b.Context(), *session(viewer))
			for b.Loop() {
				r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/graphql", strings.NewReader(w.body))
				r.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"errors"`) {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
