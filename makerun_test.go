package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMakeRun is the README's first command on a fresh checkout, with a temporary directory in
// place of ./.data (make's DATA): without DATABASE_URL, `make run` creates a private PostgreSQL
// cluster, migrates, loads the demo data, prints the URLs and serves; SIGTERM stops it with
// status 0. A second `make run` reuses the cluster and its data (the demo data is not loaded
// again), `make token` prints a partner token the server accepts, and Ctrl-C stops it. Then
// `make demo` restores the demo data, `make migrate` has nothing to do, and `make stop` stops
// the cluster.
func TestMakeRun(t *testing.T) {
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	pg := filepath.Join(data, "pg")
	t.Cleanup(func() {
		if out, err := exec.Command(filepath.Join(root, ".ci", "pgcluster"), "destroy", pg).CombinedOutput(); err != nil {
			t.Errorf("pgcluster destroy: %v\n%s", err, out)
		}
	})
	m := makeIn{t: t, root: root, data: data, base: "http://" + freeLoopbackAddr(t)}

	// First run: a new cluster, the demo data, the URLs; SIGTERM.
	r := m.start()
	if !strings.Contains(r.out.String(), "demo data loaded") {
		t.Errorf("the first make run did not load the demo data:\n%s", r.out.String())
	}
	r.checkServes()
	port, err := os.ReadFile(filepath.Join(pg, "port"))
	if err != nil {
		t.Fatalf("no cluster under %s: %v", pg, err)
	}
	db := m.db()
	var orgs, users, teams, invitations, contacts int
	err = db.QueryRow(`SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM users),
		(SELECT count(*) FROM teams), (SELECT count(*) FROM invitations), (SELECT count(*) FROM contacts)`).Scan(&orgs, &users, &teams, &invitations, &contacts)
	if err != nil {
		t.Fatal(err)
	}
	if orgs != 2 || users < 1000 || teams < 100 || invitations == 0 || contacts == 0 {
		t.Errorf("demo data: %d organizations, %d users, %d teams, %d invitations, %d contacts; want 2, about 1000, about 100, some, some",
			orgs, users, teams, invitations, contacts)
	}
	// The three fixed users hold their roles in one team, which the test then renames.
	var team, teamName string
	err = db.QueryRow(`SELECT t.id, t.name FROM teams t WHERE
		EXISTS (SELECT FROM team_accesses a JOIN users u ON u.id = a.user_id WHERE a.team_id = t.id AND u.email = 'e2e.team-owner@example.com' AND a.role = 'owner') AND
		EXISTS (SELECT FROM team_accesses a JOIN users u ON u.id = a.user_id WHERE a.team_id = t.id AND u.email = 'e2e.team-administrator@example.com' AND a.role = 'administrator') AND
		EXISTS (SELECT FROM team_accesses a JOIN users u ON u.id = a.user_id WHERE a.team_id = t.id AND u.email = 'e2e.team-member@example.com' AND a.role = 'member')
		ORDER BY t.id LIMIT 1`).Scan(&team, &teamName)
	if err != nil {
		t.Fatalf("no team holds the three e2e users in their roles: %v", err)
	}
	r.stop(syscall.SIGTERM)
	if r.err != nil {
		t.Errorf("make run after SIGTERM: %v, want status 0\n%s", r.err, r.out.String())
	}
	if _, err := db.Exec("UPDATE teams SET name = 'Renamed by TestMakeRun' WHERE id = $1", team); err != nil {
		t.Fatal(err)
	}

	// Second run: the same cluster and data; make token; make stop while serving; Ctrl-C.
	r = m.start()
	if again, _ := os.ReadFile(filepath.Join(pg, "port")); string(again) != string(port) {
		t.Errorf("the second make run made another cluster (port %s, then %s)", port, again)
	}
	if out := r.out.String(); strings.Contains(out, "demo data loaded") || !strings.Contains(out, "demo data already loaded") {
		t.Errorf("the second make run loaded the demo data again:\n%s", out)
	}
	if name := m.teamName(db, team); name != "Renamed by TestMakeRun" {
		t.Errorf("after the second make run, the team is named %q: its data was not kept", name)
	}
	r.checkServes()
	token := strings.TrimSpace(m.make(map[string]string{"PUBLIC_URL": r.base}, "token", "USER=e2e.team-owner@example.com", "SP=docs"))
	req, _ := http.NewRequest(http.MethodPost, r.base+"/graphql", strings.NewReader(`{"query":"{ me { email } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if body := mustDo(t, req, http.StatusOK); !strings.Contains(body, `"email":"e2e.team-owner@example.com"`) {
		t.Errorf("me with the token of make token = %s", body)
	}
	m.make(nil, "stop")
	if code, _ := get(t, r.base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d once make stop stopped the database, want 503", code)
	}
	if code, _ := get(t, r.base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d once make stop stopped the database, want 200", code)
	}
	r.stop(syscall.SIGINT) // Ctrl-C: the terminal signals make and the server alike
	if _, err := http.Get(r.base + "/healthz"); err == nil {
		t.Error("the server still answers after Ctrl-C")
	}

	// make demo restores the demo data (starting the cluster again), make migrate has nothing to do.
	m.make(nil, "demo")
	db = m.db()
	if name := m.teamName(db, team); name != teamName {
		t.Errorf("after make demo, the team is named %q, want %q back", name, teamName)
	}
	if out := m.make(nil, "migrate"); !strings.Contains(out, `"applied":0`) {
		t.Errorf("make migrate on a migrated database:\n%s", out)
	}
	m.make(nil, "stop")
	if err := db.Ping(); err == nil {
		t.Error("the database still answers after make stop")
	}
}

// makeIn runs make targets of the checkout at root with DATA in a test's directory, in an
// environment as a fresh shell has it: no DATABASE_URL, no settings of the server, and none of
// the make that may be running this test.
type makeIn struct {
	t          *testing.T
	root, data string
	base       string // http://127.0.0.1:<a free port>
}

func (m makeIn) env(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DATABASE_URL", "LISTEN_ADDR", "ENVIRONMENT", "MIGRATE", "PUBLIC_URL", "OIDC_OP_URL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL":
			continue
		}
		env = append(env, kv)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// make runs a target that ends by itself and returns its output.
func (m makeIn) make(env map[string]string, args ...string) string {
	m.t.Helper()
	cmd := exec.Command("make", append([]string{"-s", "-C", m.root, "DATA=" + m.data}, args...)...)
	cmd.Env = m.env(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		m.t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (m makeIn) db() *sql.DB {
	m.t.Helper()
	url, err := exec.Command(filepath.Join(m.root, ".ci", "pgcluster"), "url", filepath.Join(m.data, "pg")).Output()
	if err != nil {
		m.t.Fatalf("pgcluster url: %v", err)
	}
	db, err := sql.Open("pgx", strings.TrimSpace(string(url)))
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { db.Close() })
	return db
}

func (m makeIn) teamName(db *sql.DB, id string) string {
	m.t.Helper()
	var name string
	if err := db.QueryRow("SELECT name FROM teams WHERE id = $1", id).Scan(&name); err != nil {
		m.t.Fatal(err)
	}
	return name
}

// running is a `make run` in progress.
type running struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *lockedBuffer // stdout and stderr
	base string        // the server's URL, as printed
	done chan struct{}
	err  error // make's exit, once done is closed
}

var printedURL = regexp.MustCompile(`Health: +(http://\S+)/healthz`) // the last URL printed

// start runs `make run` on m.base (LISTEN_ADDR and PUBLIC_URL, so that the development
// provider's issuer is where the test reaches it) and returns once it printed the URLs.
func (m makeIn) start() *running {
	m.t.Helper()
	cmd := exec.Command("make", "-s", "-C", m.root, "run", "DATA="+m.data)
	cmd.Env = m.env(map[string]string{"LISTEN_ADDR": strings.TrimPrefix(m.base, "http://"), "PUBLIC_URL": m.base})
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, as a terminal's job
	r := &running{t: m.t, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		m.t.Fatal(err)
	}
	cmd.Stdout = r.out
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	printed := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.out.Write(append(sc.Bytes(), '\n'))
			if p := printedURL.FindStringSubmatch(sc.Text()); p != nil {
				select {
				case printed <- p[1]:
				default:
				}
			}
		}
		io.Copy(r.out, stderr)
		r.err = cmd.Wait()
		close(r.done)
	}()
	m.t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
	})
	select {
	case r.base = <-printed:
	case <-r.done:
		m.t.Fatalf("make run ended before serving: %v\n%s", r.err, r.out.String())
	case <-time.After(10 * time.Minute): // a cold build, initdb and the demo data on a busy machine
		m.t.Fatalf("make run printed no URLs within 10 minutes:\n%s", r.out.String())
	}
	if r.base != m.base {
		m.t.Errorf("make run printed %s, want %s (LISTEN_ADDR)", r.base, m.base)
	}
	for _, u := range []string{"GraphQL:    " + r.base + "/graphql", "Playground: " + r.base + "/playground"} {
		if !strings.Contains(r.out.String(), u) {
			m.t.Errorf("make run did not print %q:\n%s", u, r.out.String())
		}
	}
	return r
}

// checkServes checks the health and readiness endpoints and the public config query.
func (r *running) checkServes() {
	r.t.Helper()
	if code, _ := get(r.t, r.base+"/healthz"); code != http.StatusOK {
		r.t.Errorf("/healthz = %d, want 200", code)
	}
	if code, body := get(r.t, r.base+"/readyz"); code != http.StatusOK {
		r.t.Errorf("/readyz = %d %q, want 200", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, r.base+"/graphql", strings.NewReader(`{"query":"{ config { languages { code } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		Data struct {
			Config struct{ Languages []struct{ Code string } }
		}
	}
	if err := json.Unmarshal([]byte(mustDo(r.t, req, http.StatusOK)), &out); err != nil || len(out.Data.Config.Languages) != 2 {
		r.t.Errorf("config: languages %+v (%v), want en-us and fr-fr", out.Data.Config.Languages, err)
	}
}

// stop signals the server (SIGTERM) or its whole job (SIGINT, as Ctrl-C does) and waits for
// make to end; the server must have shut down without an error.
func (r *running) stop(sig syscall.Signal) {
	r.t.Helper()
	target := -r.cmd.Process.Pid
	if sig == syscall.SIGTERM {
		// The recipe execs the server: make's only child.
		pid := strconv.Itoa(r.cmd.Process.Pid)
		children, err := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children")
		f := strings.Fields(string(children))
		if err != nil || len(f) != 1 {
			r.t.Fatalf("make's children: %q (%v), want the server alone", children, err)
		}
		if target, err = strconv.Atoi(f[0]); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := syscall.Kill(target, sig); err != nil {
		r.t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		r.t.Fatalf("make run still running a minute after %v:\n%s", sig, r.out.String())
	}
	out := r.out.String()
	if !strings.Contains(out, "shutting down") || strings.Contains(out, "people: ") {
		r.t.Errorf("make run after %v: the server did not shut down cleanly:\n%s", sig, out)
	}
	if sig == syscall.SIGINT {
		var exit *exec.ExitError
		if r.err != nil && !errors.As(r.err, &exit) {
			r.t.Errorf("make run after Ctrl-C: %v", r.err)
		}
	}
}

func mustDo(t *testing.T, req *http.Request, status int) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Errorf("%s %s = %d %s, want %d", req.Method, req.URL, resp.StatusCode, b, status)
	}
	return string(b)
}
