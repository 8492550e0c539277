package ops

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"lasuite.fr/people/store/storetest"
)

func TestRequestID(t *testing.T) {
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tt := range []struct {
		in   string
		keep bool
	}{
		{"", false},
		{"abc-123_X.y:z", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"has space", false},
		{"new\nline", false},
		{`"quoted"`, false},
		{"é", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Request-Id", tt.in)
		got := requestID(r)
		if tt.keep && got != tt.in || !tt.keep && !generated.MatchString(got) {
			t.Errorf("requestID with X-Request-Id %q = %q, keep %v", tt.in, got, tt.keep)
		}
	}
}

// TestPanicIsInternal: a panic anywhere in the HTTP chain is INTERNAL with the request id,
// logged with its stack for operators, and says nothing of its value to the client.
func TestPanicIsInternal(t *testing.T) {
	logs := new(lockedBuffer)
	log := slog.New(NewLogHandler(slog.NewJSONHandler(logs, nil))) // as main logs in production
	o := New(Options{Deadline: time.Minute}, storetest.Open(t).DB().DB, nil, log)
	mux := http.NewServeMux()
	mux.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("secret detail of the failure") })
	mux.HandleFunc("/half", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "half an answer")
		w.(http.Flusher).Flush()
		panic("after writing")
	})
	srv := httptest.NewServer(o.Middleware(mux))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusInternalServerError || len(body.Errors) != 1 || body.Errors[0].Extensions["code"] != "INTERNAL" ||
		body.Errors[0].Extensions["requestId"] != id || id == "" || body.Errors[0].Message != "internal error" {
		t.Errorf("a panic: %d, X-Request-Id %q, %+v; want 500 INTERNAL with the request id", resp.StatusCode, id, body)
	}
	entry := logEntry(t, logs.String(), "request panicked")
	if entry["request_id"] != id || !strings.Contains(fmt.Sprint(entry["stack"]), "middleware_test.go") || entry["panic"] != "secret detail of the failure" {
		t.Errorf("panic log entry: %v", entry)
	}
	if line := logEntry(t, logs.String(), "request"); line["status"] != float64(500) || line["request_id"] != id {
		t.Errorf("request log entry after a panic: %v", line)
	}

	// Once the answer has begun, the connection is cut: the client cannot take half an answer
	// for a whole one.
	resp, err = http.Get(srv.URL + "/half")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a panic after the answer began: the client read a complete answer")
	}
	if got := scrapedValue(t, o.metrics.Handler(log), "people_panics_total"); got != 2 {
		t.Errorf("people_panics_total = %v, want 2", got)
	}
}

// logEntries parses JSON log lines.
func logEntries(t *testing.T, out string) []map[string]any {
	t.Helper()
	var entries []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("a log line is not JSON: %q", sc.Text())
		}
		entries = append(entries, e)
	}
	return entries
}

// logEntry is the last entry with message msg.
func logEntry(t *testing.T, out, msg string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, e := range logEntries(t, out) {
		if e["msg"] == msg {
			found = e
		}
	}
	if found == nil {
		t.Fatalf("no %q in the logs:\n%s", msg, out)
	}
	return found
}

// lockedBuffer collects the logs of handlers that run concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// scrapedValue reads an unlabelled series from what h serves at /metrics.
func scrapedValue(t *testing.T, h http.Handler, name string) float64 {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no %s in /metrics:\n%s", name, w.Body.String())
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
