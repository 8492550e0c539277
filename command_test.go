package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func TestCreateStaffCommand(t *testing.T) {
	s := storetest.Open(t)
	vars := env(map[string]string{"DATABASE_URL": storetest.URL(t)})
	u := storetest.User(t, s, storetest.Organization(t, s))

	var out bytes.Buffer
	if err := run(t.Context(), []string{"create-staff", "--email", strings.ToUpper(u.Email)}, vars, &out, nil); err != nil {
		t.Fatalf("create-staff: %v", err)
	}
	if !strings.Contains(out.String(), u.ID.String()+" ("+u.Email+") is now active staff") {
		t.Errorf("output %q does not name the user", out.String())
	}
	if got, err := s.UserByID(t.Context(), u.ID); err != nil || !got.IsStaff {
		t.Errorf("after create-staff: %+v, %v", got, err)
	}

	// An email nobody has: the user is created, staff, and a second run keeps them.
	email := "First-Staff-" + storetest.Unique() + "@Example.test"
	out.Reset()
	if err := run(t.Context(), []string{"create-staff", "--email", email, "--name", "Ada Admin"}, vars, &out, nil); err != nil {
		t.Fatalf("create-staff for a new email: %v", err)
	}
	var created store.User
	if err := s.DB().NewSelect().Model(&created).Where("lower(email) = lower(?)", email).Scan(t.Context()); err != nil {
		t.Fatalf("the created user: %v", err)
	}
	if !created.IsStaff || created.Name != "Ada Admin" || !strings.Contains(out.String(), created.ID.String()+" ("+created.Email+") is created as active staff") {
		t.Errorf("created %+v, output %q", created, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"create-staff", "--email", strings.ToLower(email)}, vars, &out, nil); err != nil ||
		!strings.Contains(out.String(), created.ID.String()+" ("+created.Email+") is now active staff") {
		t.Errorf("create-staff again: %v, output %q, want the same user kept", err, out.String())
	}

	// -h needs neither a database nor a configuration.
	out.Reset()
	if err := run(t.Context(), []string{"create-staff", "-h"}, env(nil), &out, nil); err != nil ||
		!strings.Contains(out.String(), staffUsageLine) || !strings.Contains(out.String(), "-issuer") ||
		!strings.Contains(out.String(), "-name") || !strings.Contains(out.String(), "OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION") {
		t.Errorf("create-staff -h: %v, output %q", err, out.String())
	}

	noFallback := env(map[string]string{"DATABASE_URL": storetest.URL(t), "OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION": "false"})
	nobody := "nobody-" + storetest.Unique() + "@example.test"
	if err := run(t.Context(), []string{"create-staff", "--email", nobody}, noFallback, io.Discard, nil); err == nil ||
		!strings.Contains(err.Error(), "OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION is off, so a user created now could never log in") {
		t.Errorf("create-staff for a new email without the email fallback: %v, want a refusal naming the setting", err)
	}
	if n, err := s.DB().NewSelect().TableExpr("users").Where("email = ?", nobody).Count(t.Context()); err != nil || n != 0 {
		t.Errorf("%d users created without the email fallback (%v)", n, err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create-staff", "--id", uuid.NewString()}, "no user has this id"},
		{[]string{"create-staff"}, "usage: people create-staff"},
		{[]string{"create-staff", "--email", u.Email, "--id", u.ID.String()}, "usage: people create-staff"},
		{[]string{"create-staff", "--id", u.ID.String(), "--name", "X"}, "usage: people create-staff"},
		{[]string{"create-staff", "--id", "nope"}, "not a UUID"},
		{[]string{"create-staff", "--email", "not an email"}, "enter a valid email address"},
		{[]string{"create-staff", "--sub", "x", "--email", u.Email}, "usage: people create-staff"},
		{[]string{"create-staff", "--sub", "x", "--id", u.ID.String()}, "usage: people create-staff"},
		{[]string{"create-staff", "--email", u.Email, "--issuer", "https://op.example"}, "usage: people create-staff"},
		{[]string{"create-staff", "--sub", "x"}, "--sub needs --issuer when OIDC_OP_URL is not set"},
		{[]string{"create-staff", "--sub", strings.Repeat("x", 256), "--issuer", "https://op.example"}, "subject at most 255 characters"},
	} {
		err := run(t.Context(), tc.args, vars, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}

// create-staff --sub binds a staff user to one identity at OIDC_OP_URL (or --issuer), with no
// email: the first login with that issuer and subject is them, whatever email it brings.
// auth's TestLoginStaffBySubject runs that login through the whole browser flow.
func TestCreateStaffBySubCommand(t *testing.T) {
	s := storetest.Open(t)
	op := "https://op-" + storetest.Unique() + ".example/api/v2"
	vars := env(map[string]string{"DATABASE_URL": storetest.URL(t), "OIDC_OP_URL": op, "OIDC_RP_CLIENT_SECRET": "s",
		"SECRET_KEY": strings.Repeat("k", 32)})
	sub := "agent-" + storetest.Unique()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"create-staff", "--sub", sub, "--name", "Dana"}, vars, &out, nil); err != nil {
		t.Fatalf("create-staff --sub: %v", err)
	}
	var id uuid.UUID
	if err := s.DB().QueryRowContext(t.Context(), "SELECT user_id FROM user_identities WHERE issuer = ? AND subject = ? AND audience = ''", op, sub).Scan(&id); err != nil {
		t.Fatalf("the identity at OIDC_OP_URL: %v", err)
	}
	if !strings.Contains(out.String(), id.String()+" is created as active staff: at their first login with subject \""+sub+"\" at "+op) {
		t.Errorf("output %q does not name the user, the subject and the issuer", out.String())
	}
	// Again: the same user.
	out.Reset()
	if err := run(t.Context(), []string{"create-staff", "--sub", sub}, vars, &out, nil); err != nil || !strings.Contains(out.String(), id.String()+" is now active staff") {
		t.Errorf("create-staff --sub again: %v, output %q", err, out.String())
	}
	// The first login with the identity, whatever its email, is the staff user.
	email := "dana-" + storetest.Unique() + "@example.test"
	u, err := s.ProvisionLogin(t.Context(), store.Claims{Issuer: op, Subject: sub, Email: email, EmailVerified: true, RegistrationID: "12345678901234"},
		store.DefaultLoginOptions())
	if err != nil || u.ID != id || !u.IsStaff || u.Email != email {
		t.Errorf("first login = %+v, %v; want the staff user %s with the provider's email", u, err, id)
	}

	// --issuer names another provider; in development, the default is the development provider.
	other := "https://other-" + storetest.Unique() + ".example"
	if err := run(t.Context(), []string{"create-staff", "--sub", sub, "--issuer", other}, vars, io.Discard, nil); err != nil {
		t.Fatalf("create-staff --sub --issuer: %v", err)
	}
	dev := env(map[string]string{"DATABASE_URL": storetest.URL(t), "ENVIRONMENT": "development"})
	if err := run(t.Context(), []string{"create-staff", "--sub", sub}, dev, io.Discard, nil); err != nil {
		t.Fatalf("create-staff --sub in development: %v", err)
	}
	var issuers []string
	if err := s.DB().NewSelect().TableExpr("user_identities").Column("issuer").Where("subject = ? AND user_id <> ?", sub, id).
		OrderExpr("issuer").Scan(t.Context(), &issuers); err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://localhost:8071/dev-oidc", other}; !slices.Equal(issuers, want) {
		t.Errorf("identities of the other staff users at %v, want %v", issuers, want)
	}
}

// TestHelpCommand: help, -h and --help list every command on stdout and succeed without any
// configuration; an unknown command lists them on stderr and exits 2, before reading any.
func TestHelpCommand(t *testing.T) {
	for _, arg := range []string{"help", "-h", "--help"} {
		var out, stderr bytes.Buffer
		if code := exitCode(run(t.Context(), []string{arg}, env(nil), &out, nil), &stderr); code != 0 || stderr.Len() != 0 {
			t.Errorf("people %s: exit %d, stderr %q; want 0 and nothing", arg, code, stderr.String())
		}
		checkCommandList(t, "people "+arg, out.String())
	}
	for _, args := range [][]string{{"no-such-command"}, {"--no-such-flag"}, {"Serve"}} {
		var out, stderr bytes.Buffer
		if code := exitCode(run(t.Context(), args, env(nil), &out, nil), &stderr); code != 2 || out.Len() != 0 {
			t.Errorf("people %v: exit %d, stdout %q; want 2 and nothing", args, code, out.String())
		}
		if !strings.Contains(stderr.String(), "unknown command") {
			t.Errorf("people %v: stderr %q does not say the command is unknown", args, stderr.String())
		}
		checkCommandList(t, fmt.Sprint("people ", args), stderr.String())
	}
	// A failure that is not a usage error keeps exit status 1.
	var stderr bytes.Buffer
	if code := exitCode(run(t.Context(), []string{"migrate"}, env(nil), io.Discard, nil), &stderr); code != 1 {
		t.Errorf("people migrate without DATABASE_URL: exit %d (stderr %q), want 1", code, stderr.String())
	}
}

// checkCommandList checks that out lists each command once, on a line of its own with a summary.
func checkCommandList(t *testing.T, what, out string) {
	t.Helper()
	for _, cmd := range []string{"serve", "migrate", "demo", "create-staff", "token", "fill-organization-metadata", "help"} {
		n := 0
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == cmd {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d lines describe %s, want 1; output:\n%s", what, n, cmd, out)
		}
	}
}

// TestTokenCommand asks the development provider of a running server, as make token does.
func TestTokenCommand(t *testing.T) {
	s := storetest.Open(t)
	u := storetest.User(t, s, storetest.Organization(t, s))
	base := startServer(t, storetest.URL(t), map[string]string{"ENVIRONMENT": "development"})

	var out bytes.Buffer
	// No DATABASE_URL: the command is a client of the server, nothing more.
	if err := run(t.Context(), []string{"token", "--user", u.Email, "--sp", "docs", "--url", base}, env(nil), &out, nil); err != nil {
		t.Fatalf("token: %v", err)
	}
	token := strings.TrimSpace(out.String())
	if token == "" || strings.ContainsAny(token, " \n") {
		t.Fatalf("token output %q, want one token", out.String())
	}
	// PUBLIC_URL is the default server.
	out.Reset()
	if err := run(t.Context(), []string{"token", "--user", u.Email, "--sp", "meet"}, env(map[string]string{"PUBLIC_URL": base}), &out, nil); err != nil {
		t.Fatalf("token with PUBLIC_URL: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "--user", "nobody-" + storetest.Unique() + "@example.test", "--sp", "docs", "--url", base}, "no active user has this email"},
		{[]string{"token", "--user", u.Email, "--sp", "unknown", "--url", base}, "client_id must be a partner service"},
		{[]string{"token", "--user", u.Email}, "usage: people token"},
		{[]string{"token", "--user", u.Email, "--sp", "docs", "--url", "http://127.0.0.1:1"}, "is make run serving"},
	} {
		err := run(t.Context(), tc.args, env(nil), io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}

// TestDemoServeAndMakeToken runs what make run and make token run: `people demo --once` on an
// empty database (it migrates, then loads; a second --once leaves the data alone, a plain demo
// reloads it), `people serve` in development, then `make token` against that server, whose token
// reads the demo owner's teams as the README's curl example does.
func TestDemoServeAndMakeToken(t *testing.T) {
	db := storetest.EmptyDatabase(t)
	vars := map[string]string{"DATABASE_URL": db}
	demo := func(args ...string) {
		t.Helper()
		if err := run(t.Context(), append([]string{"demo"}, args...), env(vars), io.Discard, nil); err != nil {
			t.Fatalf("demo %v: %v", args, err)
		}
	}
	sqldb, err := sql.Open("pgx", db)
	if err != nil {
		t.Fatal(err)
	}
	defer sqldb.Close()
	ownerName := func() string {
		t.Helper()
		var name string
		if err := sqldb.QueryRowContext(t.Context(), "SELECT name FROM users WHERE sub = $1", demoOwner).Scan(&name); err != nil {
			t.Fatal(err)
		}
		return name
	}
	demo("--once")
	loaded := ownerName()
	if _, err := sqldb.ExecContext(t.Context(), "UPDATE users SET name = 'Touched' WHERE sub = $1", demoOwner); err != nil {
		t.Fatal(err)
	}
	demo("--once")
	if got := ownerName(); got != "Touched" {
		t.Errorf("demo --once on loaded data: the owner's name is %q, want it left alone", got)
	}
	demo()
	if got := ownerName(); got != loaded {
		t.Errorf("demo: the owner's name is %q, want %q again", got, loaded)
	}

	// The development provider's issuer is PUBLIC_URL's, so the server needs its address first,
	// as make run's 127.0.0.1:8071 and http://localhost:8071.
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	ctx, cancel := context.WithCancel(t.Context())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, env(map[string]string{"DATABASE_URL": db, "LISTEN_ADDR": addr, "PUBLIC_URL": base,
			"ENVIRONMENT": "development"}), io.Discard, ready)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start within 30s")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve after shutdown: %v", err)
		}
	}()

	cmd := exec.CommandContext(t.Context(), "make", "-s", "--no-print-directory", "token", "USER="+demoOwner+"@example.com", "SP=docs")
	cmd.Env = append(os.Environ(), "PUBLIC_URL="+base)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make token (it needs make and curl): %v; stderr: %s", err, stderr.String())
	}
	token := strings.TrimSpace(string(out))
	if token == "" || strings.ContainsAny(token, " \n") {
		t.Fatalf("make token printed %q, want one token", out)
	}
	status, _, body := postGraphQL(t, base, "Bearer "+token, `{ teams(first: 100) { nodes { name } } }`)
	if status != http.StatusOK || !strings.Contains(body, `"E2E Team"`) {
		t.Errorf("teams with the token of make token: %d %s, want the demo owner's E2E Team", status, body)
	}
}

const demoOwner = "e2e.team-owner"
