package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"

	"github.com/google/uuid"

	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/bench/load"
)

// The workloads' GraphQL documents. W4 is W1 sent with a partner service's bearer token.
const (
	teamsQuery = `query W1($first: Int!, $accesses: Int!) { teams(first: $first) { nodes { id name ` +
		`accesses(first: $accesses) { nodes { role user { name email } } } } } }`
	usersQuery = `query W2($search: String!, $first: Int!) { users(search: $search, first: $first) { nodes { id name email } } }`
	teamQuery  = `query W3($id: ID!, $accesses: Int!) { team(id: $id) { id name accesses(first: $accesses) { nodes { role user { name email } } } } }`
)

// Page sizes of the workloads: W1 shows 20 teams with 10 members each; W3 a whole team (at most
// 50 members in the seeded data).
const (
	teamsPage   = 20
	membersPage = 10
	usersPage   = 20
	teamMembers = 50
)

// workload is one kind of request, over many parameters.
type workload struct {
	name, title string
	like        string         // the workload whose rate this one's is compared with (W4: W1)
	server      []load.Request // to the GraphQL server
	floor       []load.Request // the same requests to the floor; none for W4
}

// sessionHeaders are what a browser on the frontend sends with the session cookie: JSON, from
// the server's public origin, so that the CSRF rules pass.
func sessionHeaders(origin, cookie string) http.Header {
	return http.Header{
		"Content-Type": {"application/json"},
		"Origin":       {origin},
		"Cookie":       {cookieName + "=" + cookie},
	}
}

// cookieName is the session cookie's name in production (SESSION_COOKIE_SECURE, the default).
const cookieName = "__Host-people_session"

func body(query string, vars map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		panic(err) // only maps of strings and numbers
	}
	return b
}

// params draws the workloads' parameters from the population, deterministically from seed.
type params struct {
	w1 []person // W1 and W4 callers
	w2 []struct {
		caller person
		search string
	}
	w3 []struct {
		caller person
		team   uuid.UUID
	}
}

func drawParams(p *population, n int, seed uint64) params {
	var out params
	r := rand.New(rand.NewPCG(seed, 1))
	for range n {
		out.w1 = append(out.w1, p.people[p.inTeams[r.IntN(len(p.inTeams))]])
	}
	r = rand.New(rand.NewPCG(seed, 2))
	for range n {
		caller := p.people[r.IntN(len(p.people))]
		colleagues := p.byOrg[caller.Org]
		out.w2 = append(out.w2, struct {
			caller person
			search string
		}{caller, fragment(r, p.people[colleagues[r.IntN(len(colleagues))]])})
	}
	r = rand.New(rand.NewPCG(seed, 3))
	for range n {
		team := p.teams[r.IntN(len(p.teams))]
		members := p.members[team]
		out.w3 = append(out.w3, struct {
			caller person
			team   uuid.UUID
		}{p.people[members[r.IntN(len(members))]], team})
	}
	return out
}

// callers are the users the session workloads act as.
func (ps params) callers() []person {
	var out []person
	out = append(out, ps.w1...)
	for _, x := range ps.w2 {
		out = append(out, x.caller)
	}
	for _, x := range ps.w3 {
		out = append(out, x.caller)
	}
	return out
}

// makeWorkloads prepares every request; tokens are minted at as for W4's callers, for the
// service "docs".
func makeWorkloads(ps params, cookies map[uuid.UUID]string, origin string, as *oidctest.Server) []workload {
	w1 := workload{name: "W1", title: "a user's 20 teams, 10 members each (session)"}
	w4 := workload{name: "W4", title: "W1 with a bearer token (introspection cached)", like: "W1"}
	tokens := map[uuid.UUID]string{}
	for i, u := range ps.w1 {
		b := body(teamsQuery, map[string]any{"first": teamsPage, "accesses": membersPage})
		h := sessionHeaders(origin, cookies[u.ID])
		w1.server = append(w1.server, load.Request{Path: "/graphql", Header: h, Body: b, Key: i})
		w1.floor = append(w1.floor, load.Request{Path: "/w1", Header: h, Body: b, Key: i})
		if tokens[u.ID] == "" {
			tokens[u.ID] = as.Mint(oidctest.Token{Subject: u.Sub, ClientID: "docs"})
		}
		w4.server = append(w4.server, load.Request{Path: "/graphql", Body: b, Key: i, Header: http.Header{
			"Content-Type": {"application/json"}, "Authorization": {"Bearer " + tokens[u.ID]},
		}})
	}
	w2 := workload{name: "W2", title: "search an organization's users, first 20"}
	for i, x := range ps.w2 {
		b := body(usersQuery, map[string]any{"search": x.search, "first": usersPage})
		h := sessionHeaders(origin, cookies[x.caller.ID])
		w2.server = append(w2.server, load.Request{Path: "/graphql", Header: h, Body: b, Key: i})
		w2.floor = append(w2.floor, load.Request{Path: "/w2", Header: h, Body: b, Key: i})
	}
	w3 := workload{name: "W3", title: "one team with its members (session)"}
	for i, x := range ps.w3 {
		b := body(teamQuery, map[string]any{"id": x.team.String(), "accesses": teamMembers})
		h := sessionHeaders(origin, cookies[x.caller.ID])
		w3.server = append(w3.server, load.Request{Path: "/graphql", Header: h, Body: b, Key: i})
		w3.floor = append(w3.floor, load.Request{Path: "/w3", Header: h, Body: b, Key: i})
	}
	return []workload{w1, w2, w3, w4}
}

// noErrors accepts a GraphQL answer without errors.
func noErrors(_ *load.Request, body []byte) error {
	if bytes.Contains(body, []byte(`"errors"`)) {
		return fmt.Errorf("GraphQL errors: %.300s", body)
	}
	return nil
}

// post sends r to base and decodes the answer's data.
func post(base string, r load.Request) (map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, base+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Data   map[string]any
		Errors []any
	}
	if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != http.StatusOK || len(out.Errors) > 0 || out.Data == nil {
		return nil, fmt.Errorf("%s: status %d: %.300s", r.Path, resp.StatusCode, b)
	}
	return out.Data, nil
}

// verify sends the first n requests of each workload to the server and to the floor, and
// fails unless they give the same answers and the answers have something in them: the floor
// must do the same work as the server, or the ratio means nothing. It returns a line per
// workload for the report.
func verify(server, floor string, ws []workload, n int) ([]string, error) {
	var notes []string
	var w1 []map[string]any // W1's answers, which W4's must equal: same callers, same teams
	for _, w := range ws {
		found := 0
		for i := range min(n, len(w.server)) {
			got, err := post(server, w.server[i])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", w.name, err)
			}
			if size(got) > 0 {
				found++
			}
			switch {
			case w.name == "W1":
				w1 = append(w1, got)
			case w.name == "W4" && i < len(w1) && !reflect.DeepEqual(got, w1[i]):
				return nil, fmt.Errorf("W4: request %d with a bearer token answers otherwise than W1 with a session", i)
			}
			if len(w.floor) == 0 {
				continue
			}
			want, err := post(floor, w.floor[i])
			if err != nil {
				return nil, fmt.Errorf("%s floor: %w", w.name, err)
			}
			if !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				f, _ := json.Marshal(want)
				return nil, fmt.Errorf("%s: the server and the floor disagree on request %d:\nserver: %.600s\nfloor:  %.600s", w.name, i, g, f)
			}
		}
		if found == 0 {
			return nil, errors.New(w.name + ": no request found anything: the parameters do not match the data")
		}
		same := "same answers as the floor"
		switch {
		case len(w.floor) == 0 && len(w1) > 0:
			same = "same answers as W1"
		case len(w.floor) == 0:
			same = "no floor"
		}
		notes = append(notes, fmt.Sprintf("%s: %d of %d sampled requests return data; %s", w.name, found, min(n, len(w.server)), same))
	}
	return notes, nil
}

// size counts the items of the first list in an answer: teams, users or members.
func size(data map[string]any) int {
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range data {
			if !yield(k) {
				return
			}
		}
	}) {
		switch v := data[k].(type) {
		case map[string]any:
			if nodes, ok := v["nodes"].([]any); ok {
				return len(nodes)
			}
			if acc, ok := v["accesses"].(map[string]any); ok {
				nodes, _ := acc["nodes"].([]any)
				return len(nodes)
			}
		}
	}
	return 0
}

// pageSize is W1 at one page size.
type pageSize struct {
	teams, members int
	requests       []load.Request
}

// sweep is W1 at other page sizes, to show that its statement count does not depend on them.
func sweep(callers []person, cookies map[uuid.UUID]string, origin string) []pageSize {
	var out []pageSize
	for _, sz := range [][2]int{{1, 1}, {5, 5}, {20, 10}, {40, 25}} {
		ps := pageSize{teams: sz[0], members: sz[1]}
		b := body(teamsQuery, map[string]any{"first": sz[0], "accesses": sz[1]})
		for i, u := range callers {
			ps.requests = append(ps.requests, load.Request{Path: "/graphql", Header: sessionHeaders(origin, cookies[u.ID]), Body: b, Key: i})
		}
		out = append(out, ps)
	}
	return out
}

// busiest returns up to n people with the most teams, for the sweep.
func busiest(p *population, n int) []person {
	count := map[int]int{}
	for _, ms := range p.members {
		for _, m := range ms {
			count[m]++
		}
	}
	idx := slices.Clone(p.inTeams)
	slices.SortStableFunc(idx, func(a, b int) int { return count[b] - count[a] })
	var out []person
	for _, i := range idx[:min(n, len(idx))] {
		out = append(out, p.people[i])
	}
	return out
}
