package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/go-cmp/cmp"

	"lasuite.fr/people/graph"
	"lasuite.fr/people/store/storetest"
)

// recorder is an Observer that remembers what it was told and refuses throttled operations
// while refuse is set.
type recorder struct {
	refuse time.Duration
	// later makes Admit answer throttled operations later, with refuse.
	later    bool
	asked    int // calls of later
	admitted []graph.Operation
	started  []graph.Operation
	finished []finished
}

type finished struct {
	Op      graph.Operation
	Codes   []string
	Started bool // Finish got Start's context
}

type startedKey struct{}

func (r *recorder) Admit(_ context.Context, op graph.Operation) (time.Duration, func() time.Duration) {
	r.admitted = append(r.admitted, op)
	switch {
	case !op.Throttled:
		return 0, nil
	case r.later:
		return 0, func() time.Duration { r.asked++; return r.refuse }
	}
	return r.refuse, nil
}

func (r *recorder) Start(ctx context.Context, op graph.Operation) context.Context {
	r.started = append(r.started, op)
	return context.WithValue(ctx, startedKey{}, true)
}

func (r *recorder) Finish(ctx context.Context, op graph.Operation, resp *graphql.Response) {
	f := finished{Op: op, Started: ctx.Value(startedKey{}) != nil}
	for _, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		f.Codes = append(f.Codes, code)
	}
	r.finished = append(r.finished, f)
}

func TestObserver(t *testing.T) {
	s := storetest.Open(t)
	u := storetest.User(t, s, storetest.Organization(t, s))
	rec := &recorder{}
	h := graph.NewHandler(s, graph.Options{Settings: allFeatures, Observer: rec})
	do := func(query string) httpResult {
		t.Helper()
		rq := post(mediaGQL, jsonBody(t, query, nil))
		rq.as = session(u.ID)
		return serve(t, h, rq)
	}

	// Root fields with fragments expanded, __typename left out; throttled data flagged.
	if r := do(`query Page { __typename config { release } ... on Query { me { id } } ...More } fragment More on Query { me { id } teams { totalCount } }`); r.Status != http.StatusOK || r.Code() != "" {
		t.Fatalf("page: %d %+v", r.Status, r.result)
	}
	want := graph.Operation{Name: "Page", Type: "query", Fields: []string{"config", "me", "teams"}, Throttled: true}
	if diff := cmp.Diff([]graph.Operation{want}, rec.admitted); diff != "" {
		t.Errorf("Admit (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]finished{{Op: want, Started: true}}, rec.finished); diff != "" {
		t.Errorf("Finish (-want +got):\n%s", diff)
	}

	// Teams are not People's throttled data: a refusing observer lets them through.
	rec.refuse = 7500 * time.Millisecond
	if r := do(`{ teams { totalCount } }`); r.Code() != "" {
		t.Errorf("teams with a refusing observer: %+v", r.result)
	}
	// A throttled operation is refused before it runs, with the seconds to wait.
	r := do(`mutation { updateMe(input: {timezone: "Europe/Paris"}) { user { timezone } } }`)
	if _, hasData := r.Raw["data"]; r.Code() != graph.CodeRateLimited || hasData || string(r.Raw["errors"]) == "" {
		t.Errorf("refused mutation: %d %s", r.Status, r.Raw)
	}
	if got := string(r.Raw["errors"]); !strings.Contains(got, `"retryAfter":8`) {
		t.Errorf("the refusal does not say when to retry: %s", got)
	}
	if me, err := s.UserByID(t.Context(), u.ID); err != nil || me.Timezone == "Europe/Paris" {
		t.Errorf("the refused mutation ran: %v %v", me, err)
	}
	last := rec.finished[len(rec.finished)-1]
	if last.Started || cmp.Diff([]string{graph.CodeRateLimited}, last.Codes) != "" || last.Op.Type != "mutation" {
		t.Errorf("Finish after a refusal: %+v; want the refusal, without Start", last)
	}
	if len(rec.started) != 2 {
		t.Errorf("Start ran %d times, want 2: never for a refused operation", len(rec.started))
	}

	// Requests refused before an operation exists are finished too, with what is known.
	n := len(rec.finished)
	do(`{ nope`)
	if len(rec.finished) != n+1 || len(rec.finished[n].Op.Fields) != 0 || rec.finished[n].Codes[0] != "GRAPHQL_PARSE_FAILED" {
		t.Errorf("Finish after a parse error: %+v", rec.finished[n:])
	}
	do(`{ nope { id } }`)
	if last := rec.finished[len(rec.finished)-1]; len(last.Op.Fields) != 0 || last.Codes[0] != "GRAPHQL_VALIDATION_FAILED" {
		t.Errorf("Finish after a validation error: %+v; want no field that is not the schema's", last)
	}
}

// TestObserverLater: an observer that answers later lets a query run meanwhile and sends
// nothing of its answer when the answer is no; a mutation waits for the answer before it runs.
func TestObserverLater(t *testing.T) {
	s := storetest.Open(t)
	u := storetest.User(t, s, storetest.Organization(t, s))
	rec := &recorder{}
	h := graph.NewHandler(s, graph.Options{Settings: allFeatures, Observer: rec})
	do := func(query string) httpResult {
		t.Helper()
		rq := post(mediaGQL, jsonBody(t, query, nil))
		rq.as = session(u.ID)
		return serve(t, h, rq)
	}
	const me = `{ me { id email } }`

	rec.later = true
	if r := do(me); r.Code() != "" || !strings.Contains(string(r.Raw["data"]), u.ID.String()) {
		t.Fatalf("query admitted later: %d %s", r.Status, r.Raw)
	}
	if rec.asked != 1 {
		t.Errorf("later was called %d times for one query, want 1", rec.asked)
	}

	// Refused later: the query ran (Start), and its answer is replaced by the refusal, the
	// same as one decided before.
	rec.refuse = 4500 * time.Millisecond
	late := do(me)
	if last := rec.finished[len(rec.finished)-1]; !last.Started || cmp.Diff([]string{graph.CodeRateLimited}, last.Codes) != "" {
		t.Errorf("Finish after a refusal later: %+v; want the refusal, after Start", last)
	}
	body := func(r httpResult) string { b, _ := json.Marshal(r.Raw); return string(b) }
	if b := body(late); strings.Contains(b, u.ID.String()) || strings.Contains(b, u.Email) {
		t.Errorf("the refused query's answer went out: %s", b)
	}
	rec.later = false
	now := do(me)
	if late.Status != now.Status || body(late) != body(now) || now.Code() != graph.CodeRateLimited {
		t.Errorf("refused later: %d %s\nrefused at once: %d %s\nwant the same", late.Status, body(late), now.Status, body(now))
	}

	// A mutation is decided before it runs, whatever the observer.
	rec.later = true
	started := len(rec.started)
	r := do(`mutation { updateMe(input: {timezone: "Europe/Paris"}) { user { timezone } } }`)
	if r.Code() != graph.CodeRateLimited {
		t.Errorf("mutation refused later: %d %s", r.Status, r.Raw)
	}
	if me, err := s.UserByID(t.Context(), u.ID); err != nil || me.Timezone == "Europe/Paris" {
		t.Errorf("the refused mutation ran: %v %v", me, err)
	}
	if len(rec.started) != started {
		t.Error("the refused mutation started")
	}
}
