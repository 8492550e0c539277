package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/store"
)

// createStaff is `people create-staff --email <email>` (or --id <uuid>): it makes an existing
// user active staff, the first one included, who then administers the directory in the
// playground. It creates no user: a user comes from a first login, which alone knows the
// identity provider's subject and the organization; see store.PromoteStaff.
func createStaff(ctx context.Context, s *store.Store, log *slog.Logger, stdout io.Writer, args []string) error {
	fs := flag.NewFlagSet("create-staff", flag.ContinueOnError)
	fs.SetOutput(stdout)
	email := fs.String("email", "", "the email of the user to make staff (compared case-insensitively)")
	idFlag := fs.String("id", "", "the id of the user, when several users share an email")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var id uuid.UUID
	switch {
	case (*email == "") == (*idFlag == ""), fs.NArg() > 0:
		return errors.New("usage: people create-staff --email <email> | --id <user id>")
	case *idFlag != "":
		var err error
		if id, err = uuid.Parse(*idFlag); err != nil {
			return fmt.Errorf("create-staff: --id %q is not a UUID", *idFlag)
		}
	}
	u, err := s.PromoteStaff(ctx, *email, id)
	if store.KindOf(err) == store.KindNotFound {
		return errors.New("create-staff: no such user: the person must log in once (through the identity provider) before being made staff")
	} else if err != nil {
		return fmt.Errorf("create-staff: %w", err)
	}
	log.InfoContext(ctx, "staff user promoted", "user_id", u.ID)
	fmt.Fprintf(stdout, "%s (%s) is now active staff: they administer the directory at /playground\n", u.ID, u.Email)
	return nil
}

// devToken is `people token --user <email> --sp <client id>`: the access token the development
// provider of a running `make run` mints for that partner service and user (POST
// /dev-oidc/dev/token, which answers only in development and only on this machine), for trying
// the API as a partner service. It needs no database: it asks the server at --url, by default
// PUBLIC_URL or http://localhost:8071.
func devToken(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stdout)
	user := fs.String("user", "", "the email of an active user")
	sp := fs.String("sp", "", "the partner service's client id (docs or meet in the demo)")
	scope := fs.String("scope", "", "space-separated scopes (default: openid email groups)")
	base := fs.String("url", cmp.Or(getenv("PUBLIC_URL"), "http://localhost:8071"), "the running server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *sp == "" || fs.NArg() > 0 {
		return errors.New("usage: people token --user <email> --sp <client id>, e.g. --user e2e.team-owner@example.com --sp docs")
	}
	form := url.Values{"user": {*user}, "client_id": {*sp}}
	if *scope != "" {
		form.Set("scope", *scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*base, "/")+devop.Path+"/dev/token",
		strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("token: is make run serving at %s? %w", *base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("token: read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token: the development provider answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = stdout.Write(body)
	return err
}
