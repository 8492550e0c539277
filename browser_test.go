package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/migrations"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/demo"
	"lasuite.fr/people/store/storetest"
)

// browserEmail is the demo user the browser signs in as: the first on the development
// provider's list.
const browserEmail = demo.E2EOwnerSub + "@example.com"

// TestBrowserPlaygroundLogin is what a person does after `make run`: open the playground, log
// in through the development provider, and run a query as themselves, in Debian's Chromium.
// It covers what the Go tests cannot: the page's Content-Security-Policy against the real
// scripts, the cookie flow through the browser's redirects, and GraphiQL sending the cookie.
func TestBrowserPlaygroundLogin(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("this test needs Debian's Chromium (%v): install the package chromium "+
			"(apt-get install chromium; make test does it when run as root)", err)
	}
	base := startDemoServer(t)
	b := startBrowser(t, chromium)

	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/playground")); err != nil {
		b.fatalf("open the playground: %v", err)
	}
	if got := b.text(ctx, "pg-user"); got != "Not logged in" {
		b.fatalf("#pg-user before login = %q, want %q", got, "Not logged in")
	}

	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("pg-login"), chromedp.NodeVisible))
	if err != nil {
		b.fatalf("click Log in: %v", err)
	}
	if resp.Status != 200 || !strings.HasPrefix(resp.URL, base+devop.Path+"/") {
		b.fatalf("Log in led to %d %s, want the development provider's login page", resp.Status, resp.URL)
	}
	user := chromedp.Search(`//button[@name="sub"][.//*[@class="email"][normalize-space()="` + browserEmail + `"]]`)
	if resp, err = chromedp.RunResponse(ctx, chromedp.Click(user, chromedp.NodeVisible)); err != nil {
		b.fatalf("pick %s on the provider's page: %v", browserEmail, err)
	}
	if resp.Status != 200 || resp.URL != base+"/playground" {
		b.fatalf("signing in led to %d %s, want 200 %s/playground", resp.Status, resp.URL, base)
	}
	if got, want := b.text(ctx, "pg-user"), "Logged in as "+browserEmail; got != want {
		b.fatalf("#pg-user after login = %q, want %q", got, want)
	}
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('pg-login').hidden`)); err != nil || !hidden {
		b.fatalf("#pg-login hidden after login = %v (err: %v), want true", hidden, err)
	}

	// GraphiQL 3's editors are CodeMirror 5, whose wrapper element holds the editor instance.
	// Typing would go through its bracket auto-closing, so the query is set whole, as a paste.
	const query = "{ me { email } }"
	setQuery := `document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(` + strconv.Quote(query) + `)`
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(".graphiql-query-editor .CodeMirror")),
		chromedp.Evaluate[chromedp.Void](setQuery),
		chromedp.Click(chromedp.CSS(".graphiql-execute-button"), chromedp.NodeVisible),
	); err != nil {
		b.fatalf("run the query in GraphiQL: %v", err)
	}
	result, err := chromedp.Run(ctx, chromedp.Poll[string](
		`(() => { const cm = document.querySelector('.result-window .CodeMirror'); return cm && cm.CodeMirror.getValue(); })()`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		b.fatalf("wait for GraphiQL's result: %v", err)
	}
	var got any
	if err := json.Unmarshal([]byte(result), &got); err != nil {
		b.fatalf("GraphiQL's result is not JSON: %v\n%s", err, result)
	}
	want := map[string]any{"data": map[string]any{"me": map[string]any{"email": browserEmail}}}
	if diff := cmp.Diff(want, got); diff != "" {
		b.fatalf("GraphiQL's result for %s (-want +got):\n%s", query, diff)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		b.fatalf("the browser's console has errors (a Content-Security-Policy violation?):\n%s", strings.Join(errs, "\n"))
	}
}

// startDemoServer serves the whole program in development, with the development provider, on
// a fresh database holding a small demo data set, and returns its origin. PUBLIC_URL must be
// the origin the browser uses, and run reads it before it listens, so the port is chosen
// first; another process could take it in between, which would fail the test, not pass it.
func startDemoServer(t *testing.T) string {
	t.Helper()
	addr := freeLoopbackAddr(t)
	base := "http://" + addr

	db := storetest.EmptyDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, db, store.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := migrations.Up(ctx, s.DB().DB); err != nil {
		t.Fatal(err)
	}
	// The identities are at this server's provider, as `make run`'s are at its own, so that
	// the login finds the user by subject. A few generated users keep the page realistic.
	if _, err := demo.Load(ctx, s.DB(), demo.Options{Users: 10, Teams: -1, Contacts: -1, PublicContacts: -1,
		Issuer: base + devop.Path}); err != nil {
		t.Fatal(err)
	}
	if got := startServer(t, db, map[string]string{
		"ENVIRONMENT": "development", "LISTEN_ADDR": addr, "PUBLIC_URL": base,
	}); got != base {
		t.Fatalf("server listens at %s, want %s", got, base)
	}
	return base
}

// browser is one headless Chromium with one tab, stopped when the test ends.
type browser struct {
	t      *testing.T
	ctx    context.Context // the tab's; step contexts derive from it
	output *lockedBuffer   // Chromium's stdout and stderr

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// startBrowser starts Chromium on a profile of its own, with everything that would reach the
// network on its own (updates, sync, field trials) turned off: the test must pass offline.
func startBrowser(t *testing.T, execPath string) *browser {
	t.Helper()
	b := &browser{t: t, output: &lockedBuffer{}}
	// The whole browser's life is bounded, so that a wedged Chromium cannot hang make test;
	// the steps have a shorter deadline, which leaves time for the screenshot of a failure.
	life, stopLife := context.WithTimeout(context.Background(), 2*time.Minute)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the suite runs as root in CI containers, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(b.output),
	)
	allocCtx, stopAlloc := chromedp.NewExecAllocator(life, opts...)
	tabCtx, stopTab := chromedp.NewContext(allocCtx)
	b.ctx = tabCtx
	consoleDone := make(chan struct{})
	t.Cleanup(func() {
		// Closing the tab's context closes the browser, and the allocator's waits for its
		// processes to exit, so none outlives the test.
		stopTab()
		stopAlloc()
		stopLife()
		<-consoleDone
	})
	if err := chromedp.Do(tabCtx); err != nil {
		close(consoleDone)
		t.Fatalf("start %s: %v\n%s", execPath, err, b.output.String())
	}
	messages := chromedp.Console(tabCtx) // subscribed now, before the first page
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// text waits until the element with this id has text, and returns it: the playground fills
// #pg-user once its own request to /graphql answers.
func (b *browser) text(ctx context.Context, id string) string {
	b.t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Poll[string](
		`document.getElementById(`+strconv.Quote(id)+`)?.textContent.trim()`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		b.fatalf("wait for text in #%s: %v", id, err)
	}
	return got
}

// consoleErrors lists the console's errors and uncaught exceptions so far, but not the
// browser's notes on HTTP errors: the playground's first request, before login, answers 401.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []string
	for _, m := range b.console {
		if m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleError && m.Source != "network" {
			errs = append(errs, fmt.Sprintf("%s %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
		}
	}
	return errs
}

// fatalf fails the test with what is needed to see why: the page's address and text, its
// console, Chromium's output, and a screenshot kept outside the test's temporary directory
// (which the test removes) so that it can still be opened afterwards.
func (b *browser) fatalf(format string, args ...any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	var report strings.Builder
	if url, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
		fmt.Fprintf(&report, "\npage: %s", url)
	}
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ''`)); err == nil {
		fmt.Fprintf(&report, "\npage text:\n%s", text)
	}
	b.mu.Lock()
	for _, m := range b.console {
		fmt.Fprintf(&report, "\nconsole %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line)
	}
	b.mu.Unlock()
	for line := range strings.Lines(b.output.String()) {
		if !strings.Contains(line, ":ERROR:dbus/") { // a container has no D-Bus; Chromium says so at length
			fmt.Fprintf(&report, "\nchromium: %s", strings.TrimSuffix(line, "\n"))
		}
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		fmt.Fprintf(&report, "\nno screenshot: %v", err)
	} else if dir, err := os.MkdirTemp("", "people-browser-test-"); err != nil {
		fmt.Fprintf(&report, "\nno screenshot: %v", err)
	} else if path := filepath.Join(dir, "failure.png"); os.WriteFile(path, png, 0o644) != nil {
		fmt.Fprintf(&report, "\nno screenshot: cannot write %s", path)
	} else {
		fmt.Fprintf(&report, "\nscreenshot: %s", path)
	}
	b.t.Fatalf(format+"%s", append(args, report.String())...)
}

// lockedBuffer collects Chromium's output, which its pipes write from other goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
