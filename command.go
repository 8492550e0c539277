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
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/peopleimport"
	"lasuite.fr/people/store"
)

// commands are people's subcommands with their one-line summaries, in the order `people help`
// lists them; run handles every one of them.
var commands = []struct{ name, summary string }{
	{"serve", "migrate (unless MIGRATE=false) and serve the API on LISTEN_ADDR; the default"},
	{"migrate", "apply pending database migrations and exit"},
	{"demo", "load the demo data (--once: only into a database without it)"},
	{"create-staff", "make a user active staff, creating them by email if need be (create-staff -h)"},
	{"token", "print a partner service's token from make run's development provider"},
	{"fill-organization-metadata", "name the organizations still named by their SIRET after the companies registry"},
	{"import-people", "copy a People database into this one, with a report (import-people -h)"},
	{"help", "print this list (also -h and --help)"},
}

func isCommand(name string) bool {
	for _, c := range commands {
		if c.name == name {
			return true
		}
	}
	return false
}

// usage is the list `people help` prints to stdout and an unknown command to stderr.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: people [command] [flags]\n\ncommands:\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
	}
	return b.String()
}

// usageError is a command line people does not understand: main prints the command list after
// it, to stderr, and exits 2 as flag parsing conventionally does.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// exitCode reports run's outcome on stderr and returns the process's exit status: 0 for
// success, 2 for a usage error, 1 for any other failure.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "people: %v\n\n%s", err, usage())
		return 2
	default:
		fmt.Fprintln(stderr, "people:", err)
		return 1
	}
}

// staffUsage is what `people create-staff -h` prints before the flags.
const staffUsage = `usage: people create-staff --email <email> [--name <name>] | --sub <subject> [--issuer <url>] [--name <name>] | --id <user id>

Makes a user active staff (reactivating them if need be): they administer the directory at
/playground. It needs DATABASE_URL and the server's configuration.

--sub names the user of one identity: the subject the identity provider gives this person, at
--issuer (by default OIDC_OP_URL; in development, the development provider). When no user has
it, a staff user is created holding exactly that identity, ahead of their first login: the
first login with this issuer and subject is this user, whatever email it brings, and no other
login ever is. No email is involved, so this is the way for a provider whose emails are not
verified (OIDC_EMAIL_VERIFIED_DEFAULT).

--email names the one user with this email, compared case-insensitively. When no user has it,
a staff user is created with this email (and --name), ahead of their first login: no
organization yet, and no identity at the identity provider. At their first login (ProConnect,
or make run's development provider), the provider's subject is linked to this user because the
provider gives the same email, whatever its case, and vouches for it (email_verified, see
OIDC_EMAIL_VERIFIED_DEFAULT; OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION, on by default: with it
off, create-staff refuses to create a user who could never log in), and the login gives them an
organization as it does to anyone. Until then, nobody logs in as them. When several users share
the email, name one by --id.

`

// staffArgs are the arguments of create-staff.
type staffArgs struct {
	email, name, sub, issuer string
	id                       uuid.UUID
}

// staffUsageLine is the usage error of create-staff.
const staffUsageLine = "usage: people create-staff --email <email> [--name <name>] | --sub <subject> [--issuer <url>] [--name <name>] | --id <user id>"

// parseStaffArgs reads create-staff's arguments before any configuration or database is
// needed, so that -h and a usage error answer at once. It returns flag.ErrHelp for -h.
func parseStaffArgs(args []string, stdout io.Writer) (staffArgs, error) {
	fs := flag.NewFlagSet("create-staff", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		io.WriteString(fs.Output(), staffUsage)
		fs.PrintDefaults()
	}
	email := fs.String("email", "", "the email of the user to make staff, or to create as staff when no user has it")
	sub := fs.String("sub", "", "the subject (sub) of the user's identity at the identity provider, made staff or created as staff with that identity")
	issuer := fs.String("issuer", "", "the identity provider of --sub (default OIDC_OP_URL; in development, the development provider)")
	name := fs.String("name", "", "the name of a user created by --email or --sub (an existing user keeps theirs; the identity provider's replaces it at each login)")
	idFlag := fs.String("id", "", "the id of an existing user, when several users share an email")
	var a staffArgs
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	a.email, a.name, a.sub, a.issuer = *email, *name, *sub, *issuer
	given := 0
	for _, v := range []string{*email, *sub, *idFlag} {
		if v != "" {
			given++
		}
	}
	switch {
	case given != 1, *name != "" && *idFlag != "", *issuer != "" && *sub == "", fs.NArg() > 0:
		return a, errors.New(staffUsageLine)
	case *idFlag != "":
		var err error
		if a.id, err = uuid.Parse(*idFlag); err != nil {
			return a, fmt.Errorf("create-staff: --id %q is not a UUID", *idFlag)
		}
	}
	return a, nil
}

// staffIssuer is the issuer create-staff --sub binds by default: the one browser logins
// record, OIDC_OP_URL, or the development provider's when it stands in for it; "" otherwise.
func staffIssuer(cfg Config) string {
	switch {
	case cfg.OIDCOPURL != "":
		return cfg.OIDCOPURL
	case cfg.Development():
		return cfg.PublicURL + devop.Path
	}
	return ""
}

// createStaff is `people create-staff`: it makes a user active staff, the first one included,
// who then administers the directory in the playground; with --sub or --email it creates the
// user when none has that identity or email (see staffUsage and store.CreateStaff). issuer is
// staffIssuer's, for --sub without --issuer; fallbackToEmail is the server's
// OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION, which alone lets a user made by email log in.
func createStaff(ctx context.Context, s *store.Store, log *slog.Logger, stdout io.Writer, a staffArgs, issuer string, fallbackToEmail bool) error {
	r := store.StaffRequest{ID: a.id, Email: a.email, Name: a.name}
	if a.sub != "" {
		r.Issuer, r.Subject = cmp.Or(a.issuer, issuer), a.sub
		if r.Issuer == "" {
			return errors.New("create-staff: --sub needs --issuer when OIDC_OP_URL is not set")
		}
	}
	u, created, err := s.CreateStaff(ctx, r, store.LoginOptions{FallbackToEmail: fallbackToEmail})
	who := func(u *store.User) string { // the email when there is one yet
		if u.Email == "" {
			return u.ID.String()
		}
		return u.ID.String() + " (" + u.Email + ")"
	}
	switch {
	case store.KindOf(err) == store.KindNotFound && a.id != uuid.Nil:
		return errors.New("create-staff: no user has this id")
	case store.KindOf(err) == store.KindNotFound:
		return errors.New("create-staff: no user has this email, and OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION is off, " +
			"so a user created now could never log in (a login would make another account): let the person log in once, then run create-staff again")
	case err != nil:
		return fmt.Errorf("create-staff: %w", err)
	case created && a.sub != "":
		log.InfoContext(ctx, "staff user created", "user_id", u.ID)
		fmt.Fprintf(stdout, "%s is created as active staff: at their first login with subject %q at %s, "+
			"they become this user and administer the directory at /playground\n", who(u), r.Subject, r.Issuer)
	case created:
		log.InfoContext(ctx, "staff user created", "user_id", u.ID)
		fmt.Fprintf(stdout, "%s is created as active staff: at their first login, with an identity provider that gives and verifies this email, "+
			"they become this user and administer the directory at /playground\n", who(u))
	default:
		log.InfoContext(ctx, "staff user promoted", "user_id", u.ID)
		fmt.Fprintf(stdout, "%s is now active staff: they administer the directory at /playground\n", who(u))
	}
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

// importUsage is what `people import-people -h` prints before the flags.
const importUsage = `usage: people import-people --from <postgres URL of a People database> [--dry-run] [--issuer <url>] [--allow-skips] [--report <file.jsonl>]

Copies a People database (core migration 0017) into this server's database (DATABASE_URL),
keeping People's ids, in one transaction: a run stopped at any point leaves the database as it
was, and running it again updates what changed in People and duplicates nothing. Each user's
sub becomes their identity at --issuer (by default OIDC_OP_URL). Rows this server refuses are
normalised or skipped by the rules of the README, every one listed in the report: a summary on
stdout, and one JSON line per row in --report. Progress goes to stderr. The exit status is 1
when a row was skipped, unless --allow-skips.

`

// importArgs are the arguments of import-people.
type importArgs struct {
	from, issuer, report string
	dryRun, allowSkips   bool
}

// parseImportArgs reads import-people's arguments before any configuration is needed. It
// returns flag.ErrHelp for -h.
func parseImportArgs(args []string, stdout io.Writer) (importArgs, error) {
	fs := flag.NewFlagSet("import-people", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		io.WriteString(fs.Output(), importUsage)
		fs.PrintDefaults()
	}
	var a importArgs
	fs.StringVar(&a.from, "from", "", "the postgres:// URL of the People database (only read)")
	fs.StringVar(&a.issuer, "issuer", "", "the OIDC issuer of People's subjects (default OIDC_OP_URL)")
	fs.StringVar(&a.report, "report", "", "write one JSON line per skipped, changed or noted row to this file")
	fs.BoolVar(&a.dryRun, "dry-run", false, "report what the import would do, and write nothing")
	fs.BoolVar(&a.allowSkips, "allow-skips", false, "exit 0 even when rows were skipped")
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	if a.from == "" || fs.NArg() > 0 {
		return a, &usageError{"usage: people import-people --from <postgres URL> [--dry-run] [--issuer <url>] [--allow-skips] [--report <file.jsonl>]"}
	}
	return a, nil
}

// importPeople is `people import-people`: peopleimport.Run, its summary on stdout, its lines in
// the --report file, progress on stderr. issuer is staffIssuer's, for a run without --issuer.
func importPeople(ctx context.Context, s *store.Store, log *slog.Logger, stdout, stderr io.Writer, a importArgs, issuer string) error {
	var report io.WriteCloser
	if a.report != "" {
		f, err := os.Create(a.report)
		if err != nil {
			return fmt.Errorf("import-people: %w", err)
		}
		report = f
		defer f.Close()
	}
	rep, err := peopleimport.Run(ctx, s, peopleimport.Options{From: a.from, Issuer: cmp.Or(a.issuer, issuer), DryRun: a.dryRun, Progress: stderr})
	if err != nil {
		return err
	}
	if err := rep.WriteSummary(stdout); err != nil {
		return err
	}
	if report != nil {
		if err := rep.WriteJSONLines(report); err != nil {
			return fmt.Errorf("import-people: write the report: %w", err)
		}
		if err := report.Close(); err != nil {
			return fmt.Errorf("import-people: write the report: %w", err)
		}
	}
	if !a.dryRun {
		log.InfoContext(ctx, "people database imported", "skipped", rep.Skipped(), "entries", len(rep.Entries))
	}
	if n := rep.Skipped(); n > 0 && !a.allowSkips {
		return fmt.Errorf("import-people: %d rows skipped (listed in the report); --allow-skips accepts them", n)
	}
	return nil
}
