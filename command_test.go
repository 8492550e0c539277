package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

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

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create-staff", "--email", "nobody-" + storetest.Unique() + "@example.test"}, "must log in once"},
		{[]string{"create-staff"}, "usage: people create-staff"},
		{[]string{"create-staff", "--email", u.Email, "--id", u.ID.String()}, "usage: people create-staff"},
		{[]string{"create-staff", "--id", "nope"}, "not a UUID"},
		{[]string{"create-staff", "--email", "not an email"}, "enter a valid email address"},
		{[]string{"no-such-command"}, "use serve, migrate, demo, create-staff or token"},
	} {
		err := run(t.Context(), tc.args, vars, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one saying %q", tc.args, err, tc.want)
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
