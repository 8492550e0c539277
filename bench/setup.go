package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"lasuite.fr/people/migrations"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/demo"
)

// enableStatementStats makes the cluster in dir (a .ci/pgcluster directory) load
// pg_stat_statements, restarting it if it does not yet. Statement counts are read from there:
// it counts every statement the server sends, at the database, whatever the driver does.
func enableStatementStats(ctx context.Context, root, dir, adminURL string, say func(string, ...any)) error {
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var libs string
	if err := db.QueryRowContext(ctx, "SHOW shared_preload_libraries").Scan(&libs); err != nil {
		return err
	}
	if strings.Contains(libs, "pg_stat_statements") {
		return nil
	}
	say("restarting PostgreSQL with pg_stat_statements")
	if _, err := db.ExecContext(ctx, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"); err != nil {
		return fmt.Errorf("load pg_stat_statements: %w", err)
	}
	db.Close()
	pg := root + "/.ci/pgcluster"
	for _, args := range [][]string{{"stop", dir}, {"start", dir, "--ephemeral"}} {
		if out, err := exec.CommandContext(ctx, pg, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("pgcluster %s: %v: %s", args[0], err, out)
		}
	}
	return nil
}

// freshDatabase drops and creates the database name on the server of adminURL, and returns
// its URL.
func freshDatabase(ctx context.Context, adminURL, name string, keep bool) (string, error) {
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return "", err
	}
	defer db.Close()
	ident := pgx.Identifier{name}.Sanitize()
	var exists bool
	if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if !keep || !exists {
		for _, q := range []string{"DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)", "CREATE DATABASE " + ident} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return "", fmt.Errorf("%s: %w", q, err)
			}
		}
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// seed migrates the database, loads the demo data set of o, and analyzes it so that the plans
// are those of a settled database.
func seed(ctx context.Context, s *store.Store, o demo.Options) (demo.Stats, error) {
	if _, err := migrations.Up(ctx, s.DB().DB); err != nil {
		return demo.Stats{}, err
	}
	st, err := demo.Load(ctx, s.DB(), o)
	if err != nil {
		return st, err
	}
	// W4 is W1 through the partner service Docs: every team is shared with it, so that both
	// give the same answers and differ only in how the caller is authenticated.
	_, err = s.DB().ExecContext(ctx, `INSERT INTO team_service_providers (team_id, service_provider_id)
		SELECT t.id, sp.id FROM teams t, service_providers sp WHERE sp.audience_id = 'docs' ON CONFLICT DO NOTHING`)
	if err != nil {
		return st, fmt.Errorf("share teams with docs: %w", err)
	}
	_, err = s.DB().ExecContext(ctx, "VACUUM ANALYZE")
	return st, err
}

// person is what the workloads need to know of a user.
type person struct {
	ID          uuid.UUID
	Sub         string
	Name, Email string
	Org         uuid.UUID
}

// population is the seeded data the workloads draw their parameters from.
type population struct {
	people  []person
	byOrg   map[uuid.UUID][]int // indexes in people
	members map[uuid.UUID][]int // team id → indexes in people
	teams   []uuid.UUID         // teams with at least one member, in id order
	inTeams []int               // people with at least one team
}

func loadPopulation(ctx context.Context, s *store.Store) (*population, error) {
	p := &population{byOrg: map[uuid.UUID][]int{}, members: map[uuid.UUID][]int{}}
	rows, err := s.DB().QueryContext(ctx, `SELECT id, sub, coalesce(name, ''), coalesce(email, ''), organization_id
		FROM users WHERE is_active AND organization_id IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, err
	}
	index := map[uuid.UUID]int{}
	for rows.Next() {
		var u person
		if err := rows.Scan(&u.ID, &u.Sub, &u.Name, &u.Email, &u.Org); err != nil {
			rows.Close()
			return nil, err
		}
		index[u.ID] = len(p.people)
		p.byOrg[u.Org] = append(p.byOrg[u.Org], len(p.people))
		p.people = append(p.people, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.DB().QueryContext(ctx, "SELECT team_id, user_id FROM team_accesses ORDER BY team_id, user_id")
	if err != nil {
		return nil, err
	}
	inTeam := map[int]bool{}
	for rows.Next() {
		var team, user uuid.UUID
		if err := rows.Scan(&team, &user); err != nil {
			rows.Close()
			return nil, err
		}
		i, ok := index[user]
		if !ok {
			continue
		}
		if len(p.members[team]) == 0 {
			p.teams = append(p.teams, team)
		}
		p.members[team] = append(p.members[team], i)
		inTeam[i] = true
	}
	rows.Close()
	for i := range p.people {
		if inTeam[i] {
			p.inTeams = append(p.inTeams, i)
		}
	}
	if len(p.teams) == 0 || len(p.inTeams) == 0 {
		return nil, fmt.Errorf("the seeded database has no team with members")
	}
	return p, rows.Err()
}

// fragment is what a person would type to find u: three to five letters of a word of the name,
// or of the email's local part, as typed (lower case, accents kept: the search ignores both).
func fragment(r *rand.Rand, u person) string {
	src := u.Email
	if i := strings.IndexByte(src, '@'); i > 0 {
		src = src[:i]
	}
	if u.Name != "" && r.IntN(2) == 0 {
		src = u.Name
	}
	words := strings.FieldsFunc(strings.ToLower(src), func(c rune) bool { return !unicode.IsLetter(c) })
	words = slices.DeleteFunc(words, func(w string) bool { return len([]rune(w)) < 3 })
	if len(words) == 0 {
		return strings.ToLower(src)
	}
	w := []rune(words[r.IntN(len(words))])
	n := min(3+r.IntN(3), len(w))
	start := r.IntN(len(w) - n + 1)
	return string(w[start : start+n])
}

// sessionCookie is the cookie value of the session the benchmark opens for a user: fixed by
// the user's id, so that the same seed gives the same requests.
func sessionCookie(user uuid.UUID) (value string, hash []byte) {
	raw := sha256.Sum256([]byte("people bench session " + user.String()))
	h := sha256.Sum256(raw[:])
	return base64.RawURLEncoding.EncodeToString(raw[:]), h[:]
}

// openSessions opens a session for each user, as a login would, and returns their cookies.
func openSessions(ctx context.Context, s *store.Store, issuer string, users []person) (map[uuid.UUID]string, error) {
	// A kept database has the sessions of the previous run, which expire in their own time.
	if _, err := s.DB().ExecContext(ctx, "DELETE FROM sessions WHERE id_token = 'bench'"); err != nil {
		return nil, err
	}
	cookies := make(map[uuid.UUID]string, len(users))
	for _, u := range users {
		if _, ok := cookies[u.ID]; ok {
			continue
		}
		value, hash := sessionCookie(u.ID)
		_, err := s.CreateSession(ctx, hash, store.NewSession{UserID: u.ID, Issuer: issuer, Subject: u.Sub, IDToken: "bench"}, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		cookies[u.ID] = value
	}
	return cookies, nil
}

// repoRoot is the module's directory, where the server is built and .ci/pgcluster lives.
func repoRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run the benchmark from inside the module")
	}
	return strings.TrimSuffix(mod, "/go.mod"), nil
}
