package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lasuite.fr/people/bench/probe"
)

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// build compiles the server (the module's root package, with the probe laid into it by an
// overlay, see bench/probe/overlay/overlay.go) and the floor into dir.
func build(ctx context.Context, root, dir string) (server, floor string, err error) {
	overlay := filepath.Join(dir, "overlay.json")
	b, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(root, "zz_benchprobe.go"): filepath.Join(root, "bench", "probe", "overlay", "overlay.go"),
	}})
	if err := os.WriteFile(overlay, b, 0o600); err != nil {
		return "", "", err
	}
	server, floor = filepath.Join(dir, "people"), filepath.Join(dir, "floor")
	for _, args := range [][]string{
		{"build", "-tags", "benchprobe", "-overlay", overlay, "-o", server, "."},
		{"build", "-o", floor, "./bench/floor"},
	} {
		cmd := exec.CommandContext(ctx, goTool(), args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return server, floor, nil
}

// proc is a process under measurement.
type proc struct {
	name  string
	cmd   *exec.Cmd
	base  string        // http://host:port
	probe string        // host:port of its bench probe
	done  chan struct{} // closed when it has exited
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs bin with env and args, its output in dir/name.log, and waits until it answers
// HTTP on addr and its probe is up.
func start(ctx context.Context, dir, name, bin, addr string, env []string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	probeFile := filepath.Join(dir, name+".probe")
	os.Remove(probeFile)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), env...), "BENCH_PROBE_FILE="+probeFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, base: "http://" + addr, done: make(chan struct{})}
	var exit error
	go func() { exit = cmd.Wait(); logf.Close(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(probeFile); err == nil && p.probe == "" {
			p.probe = string(b)
		}
		if p.probe != "" {
			if resp, err := http.Get(p.base + "/healthz"); err == nil {
				resp.Body.Close()
				return p, nil
			}
		}
		select {
		case <-p.done:
			log, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			return nil, fmt.Errorf("%s exited before it served (%v):\n%s", name, exit, tail(log, 2000))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not serve on %s within a minute", name, addr)
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// stop ends the process with SIGTERM, then SIGKILL if it lingers. Stopping a stopped process
// does nothing.
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Process.Signal(syscall.SIGCONT) // a paused process gets its SIGTERM when it runs again
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// pause stops the process (SIGSTOP) while the other one is measured: it then takes no CPU,
// and its background work (mail, webhooks) runs no statement. resume lets it run again.
func (p *proc) pause() error  { return p.cmd.Process.Signal(syscall.SIGSTOP) }
func (p *proc) resume() error { return p.cmd.Process.Signal(syscall.SIGCONT) }

// stats reads the process's allocation counters from its probe.
func (p *proc) stats() (probe.Stats, error) {
	var st probe.Stats
	resp, err := http.Get("http://" + p.probe + probe.StatsPath)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// profile fetches a CPU profile of the next d into file.
func (p *proc) profile(ctx context.Context, d time.Duration, file string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.probe, int(d.Seconds())), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// cpu is the process's user and system CPU time so far, from /proc.
func (p *proc) cpu() (time.Duration, error) {
	f := procStat(p.cmd.Process.Pid)
	if len(f) < 13 {
		return 0, errors.New("unreadable /proc stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// memory returns the process's resident set (VmRSS) and its peak (VmHWM), from /proc.
func (p *proc) memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if k == "VmRSS" {
			rss = n << 10
		} else {
			peak = n << 10
		}
	}
	return rss, peak, nil
}

// pgCPU reads the CPU time of a PostgreSQL server from /proc: its postmaster's, with that of
// its exited children, and that of its live backends. It needs to read the data directory's
// postmaster.pid, so it works only against a local server of a superuser; pid 0 means unknown.
type pgCPU struct{ pid int }

func newPGCPU(ctx context.Context, db *sql.DB) pgCPU {
	var dir string
	if err := db.QueryRowContext(ctx, "SHOW data_directory").Scan(&dir); err != nil {
		return pgCPU{}
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return pgCPU{}
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pgCPU{pid: pid}
}

func (p pgCPU) ok() bool { return p.pid > 0 }

// read returns the server's CPU time so far, or 0 when unknown.
func (p pgCPU) read() time.Duration {
	if p.pid == 0 {
		return 0
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := procStat(pid)
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		switch {
		case pid == p.pid:
			for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
				n, _ := strconv.ParseInt(f[i], 10, 64)
				total += n
			}
		case ppid == p.pid:
			for _, i := range []int{11, 12} {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				total += n
			}
		}
	}
	return time.Duration(total) * time.Second / 100
}

// procStat returns the fields of /proc/pid/stat after the command name: state first.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}
