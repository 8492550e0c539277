package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"lasuite.fr/people/peopleimport/peopletest"
	"lasuite.fr/people/store/storetest"
)

// TestImportPeopleThenLogIn runs people import-people on People's sample, as an operator does
// (the issuer by default: here make run's development provider, standing in for OIDC_OP_URL),
// then serves the imported database: Bob, by his People sub, logs in and sees his teams.
func TestImportPeopleThenLogIn(t *testing.T) {
	db := storetest.EmptyDatabase(t)
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	vars := map[string]string{"DATABASE_URL": db, "ENVIRONMENT": "development", "LISTEN_ADDR": addr, "PUBLIC_URL": base,
		"SHUTDOWN_TIMEOUT": "5s", "BURST_THROTTLE_RATES": "100000/minute", "SUSTAINED_THROTTLE_RATES": "1000000/hour"}
	if err := run(t.Context(), []string{"migrate"}, env(vars), &bytes.Buffer{}, nil); err != nil {
		t.Fatal(err)
	}
	src := peopletest.NewDatabase(t, peopletest.Sample)
	reportFile := filepath.Join(t.TempDir(), "report.jsonl")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"import-people", "--from", src, "--report", reportFile}, env(vars), &out, nil); err != nil {
		t.Fatalf("import-people: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "0 skipped, 8 changed, 4 noted") {
		t.Errorf("import-people's summary:\n%s\nwant 0 skipped, 8 changed, 4 noted", out.String())
	}
	b, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		var e struct{ Table, ID, Action, Reason string }
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Table == "" || e.ID == "" || e.Action == "" || e.Reason == "" {
			t.Errorf("report line %q: want table, id, action and reason (%v)", l, err)
		}
	}
	if len(lines) != 12 {
		t.Errorf("report has %d lines, want 12:\n%s", len(lines), b)
	}

	// A row People holds and this server refuses: the exit status says so, unless --allow-skips.
	if err := peopletest.Load(t.Context(), src, `INSERT INTO people_invitation VALUES ('00000007-0000-4000-8000-000000000099',
		now(), now(), 'not an address', 'member', '00000003-0000-4000-8000-000000000001', '00000004-0000-4000-8000-000000000001')`); err != nil {
		t.Fatal(err)
	}
	err = run(t.Context(), []string{"import-people", "--from", src}, env(vars), &bytes.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "1 rows skipped") || exitCode(err, &bytes.Buffer{}) != 1 {
		t.Errorf("import-people with a skipped row = %v, want exit status 1 naming it", err)
	}
	if err := run(t.Context(), []string{"import-people", "--from", src, "--allow-skips"}, env(vars), &bytes.Buffer{}, nil); err != nil {
		t.Errorf("import-people --allow-skips = %v, want success", err)
	}

	ctx, stop := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	logs := new(lockedBuffer)
	go func() { done <- run(ctx, nil, env(vars), logs, ready) }()
	select {
	case <-ready:
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("run() after shutdown = %v", err)
			}
		})
	case err := <-done:
		stop()
		t.Fatalf("server did not start: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		stop()
		t.Fatal("server did not start within 30s")
	}
	ps := pooledServer{base: base, direct: db, logs: logs}
	c := ps.login(t, "agentconnect-0b0b0b03")
	var data struct {
		Me    struct{ Email string }
		Teams struct {
			Nodes []struct{ Name string }
		}
	}
	if err := ps.graphql(c, `query { me { email } teams(first: 10) { nodes { name } } }`, nil, &data); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range data.Teams.Nodes {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	if want := []string{"Direction numérique", "Pôle Produits", "Équipe Messagerie"}; data.Me.Email != "bob.durand@exemple.gouv.fr" || !slices.Equal(names, want) {
		t.Errorf("Bob sees me %q and teams %q, want bob.durand@exemple.gouv.fr and %q", data.Me.Email, names, want)
	}
}
