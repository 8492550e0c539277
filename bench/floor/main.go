// Command floor is the benchmark's floor: the least a server could do to answer workloads W1
// to W3 of make bench, as a plain net/http handler over a pgx pool with one hand-written SQL
// statement per request. The statement authenticates the caller too (the session cookie's
// hash, joined to its active user), so the floor answers exactly the request the real server
// gets, with the same visibility rules, order and JSON shape: the harness checks that both give
// the same answers before it times them. It imports only bench/probe of our packages.
//
//	floor -listen 127.0.0.1:0     (DATABASE_URL in the environment; prints "listening on ADDR")
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	_ "lasuite.fr/people/bench/probe"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	conns := flag.Int("conns", 20, "connection pool size (the server's DATABASE_MAX_CONNS)")
	cookie := flag.String("cookie", "__Host-people_session", "name of the session cookie")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, os.Getenv("DATABASE_URL"), *conns, *cookie); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, dsn string, conns int, cookie string) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.MaxConns, cfg.MinConns = int32(conns), int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: newHandler(pool, cookie)}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// The answers, shaped as the GraphQL server's.
type (
	user struct {
		Name  *string `json:"name"`
		Email *string `json:"email"`
	}
	access struct {
		Role string `json:"role"`
		User user   `json:"user"`
	}
	accesses struct {
		Nodes []access `json:"nodes"`
	}
	team struct {
		ID       string   `json:"id"`
		Name     string   `json:"name"`
		Accesses accesses `json:"accesses"`
	}
	listedUser struct {
		ID    string  `json:"id"`
		Name  *string `json:"name"`
		Email *string `json:"email"`
	}
)

// me is the caller: the active user of a live session, as store.SessionByToken reads it.
const me = `me AS (
	SELECT s.user_id, u.organization_id FROM sessions s JOIN users u ON u.id = s.user_id
	WHERE s.token_hash = $1 AND s.expires_at > now() AND u.is_active
)`

// accessOrder is the server's default order of a team's members: owners first, then by name.
const accessOrder = `array_position(ARRAY['owner','administrator','member']::varchar[], ta.role), u.name, ta.id`

// teamsSQL is W1: the caller's 20 newest teams, each with its first 10 members.
const teamsSQL = `WITH ` + me + `, t AS (
	SELECT t.id, t.name, t.created_at FROM teams t
	JOIN team_accesses va ON va.team_id = t.id AND va.user_id = (SELECT user_id FROM me)
	ORDER BY t.created_at DESC, t.id DESC LIMIT 20
)
SELECT t.id::text, t.name, a.role, a.name, a.email FROM t
LEFT JOIN LATERAL (
	SELECT ta.role, u.name, u.email, row_number() OVER (ORDER BY ` + accessOrder + `) AS rn
	FROM team_accesses ta JOIN users u ON u.id = ta.user_id WHERE ta.team_id = t.id
	ORDER BY ` + accessOrder + ` LIMIT $2
) a ON true
ORDER BY t.created_at DESC, t.id DESC, a.rn`

// teamSQL is W3: one team the caller belongs to, with its first members.
const teamSQL = `WITH ` + me + `, t AS (
	SELECT t.id, t.name FROM teams t
	JOIN team_accesses va ON va.team_id = t.id AND va.user_id = (SELECT user_id FROM me)
	WHERE t.id = $3
)
SELECT t.id::text, t.name, a.role, a.name, a.email FROM t
LEFT JOIN LATERAL (
	SELECT ta.role, u.name, u.email, row_number() OVER (ORDER BY ` + accessOrder + `) AS rn
	FROM team_accesses ta JOIN users u ON u.id = ta.user_id WHERE ta.team_id = t.id
	ORDER BY ` + accessOrder + ` LIMIT $2
) a ON true
ORDER BY a.rn`

// usersSQL is W2: active users of the caller's organization whose name or email contains a
// fragment, accent- and case-insensitively, newest first.
const usersSQL = `WITH ` + me + `
SELECT u.id::text, u.name, u.email FROM users u
WHERE u.is_active AND u.organization_id = (SELECT organization_id FROM me)
	AND (search_key(u.name) LIKE search_key($2) OR search_key(u.email) LIKE search_key($2))
ORDER BY u.created_at DESC, u.id DESC LIMIT $3`

type handler struct {
	pool   *pgxpool.Pool
	cookie string
}

func newHandler(pool *pgxpool.Pool, cookie string) http.Handler {
	h := &handler{pool: pool, cookie: cookie}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /w1", h.teams)
	mux.HandleFunc("POST /w2", h.users)
	mux.HandleFunc("POST /w3", h.team)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return mux
}

// request is the GraphQL request body: the floor reads only its variables.
type request struct {
	Variables struct {
		ID       string `json:"id"`
		Search   string `json:"search"`
		First    int    `json:"first"`
		Accesses int    `json:"accesses"`
	} `json:"variables"`
}

func (h *handler) read(w http.ResponseWriter, r *http.Request) (request, []byte, bool) {
	var req request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return req, nil, false
	}
	c, err := r.Cookie(h.cookie)
	if err != nil {
		http.Error(w, "no session", http.StatusUnauthorized)
		return req, nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		http.Error(w, "bad session", http.StatusUnauthorized)
		return req, nil, false
	}
	hash := sha256.Sum256(raw)
	return req, hash[:], true
}

func (h *handler) teams(w http.ResponseWriter, r *http.Request) {
	req, hash, ok := h.read(w, r)
	if !ok {
		return
	}
	rows, _ := h.pool.Query(r.Context(), teamsSQL, hash, req.Variables.Accesses)
	teams, err := scanTeams(rows)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, map[string]any{"teams": map[string]any{"nodes": teams}})
}

func (h *handler) team(w http.ResponseWriter, r *http.Request) {
	req, hash, ok := h.read(w, r)
	if !ok {
		return
	}
	rows, _ := h.pool.Query(r.Context(), teamSQL, hash, req.Variables.Accesses, req.Variables.ID)
	teams, err := scanTeams(rows)
	if err != nil {
		fail(w, err)
		return
	}
	if len(teams) != 1 {
		reply(w, map[string]any{"team": nil})
		return
	}
	reply(w, map[string]any{"team": teams[0]})
}

// scanTeams groups rows of (team id, name, role, user name, email), ordered by team, into
// teams; a team without members has one row of NULLs.
func scanTeams(rows pgx.Rows) ([]team, error) {
	defer rows.Close()
	teams := []team{}
	for rows.Next() {
		var id, name string
		var role *string
		var u user
		if err := rows.Scan(&id, &name, &role, &u.Name, &u.Email); err != nil {
			return nil, err
		}
		if len(teams) == 0 || teams[len(teams)-1].ID != id {
			teams = append(teams, team{ID: id, Name: name, Accesses: accesses{Nodes: []access{}}})
		}
		if role != nil {
			t := &teams[len(teams)-1]
			t.Accesses.Nodes = append(t.Accesses.Nodes, access{Role: strings.ToUpper(*role), User: u})
		}
	}
	return teams, rows.Err()
}

func (h *handler) users(w http.ResponseWriter, r *http.Request) {
	req, hash, ok := h.read(w, r)
	if !ok {
		return
	}
	pattern := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.TrimSpace(req.Variables.Search)) + "%"
	rows, _ := h.pool.Query(r.Context(), usersSQL, hash, pattern, req.Variables.First)
	defer rows.Close()
	users := []listedUser{}
	for rows.Next() {
		var u listedUser
		if err := rows.Scan(&u.ID, &u.Name, &u.Email); err != nil {
			fail(w, err)
			return
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		fail(w, err)
		return
	}
	reply(w, map[string]any{"users": map[string]any{"nodes": users}})
}

func reply(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"data": data})
}

func fail(w http.ResponseWriter, err error) {
	http.Error(w, "query failed: "+err.Error(), http.StatusInternalServerError)
}
