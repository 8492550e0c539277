package registry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lasuite.fr/people/registry"
)

// fakeRegistry serves the search API's answer shape from testdata, after answer says how.
type fakeRegistry struct {
	srv      *httptest.Server
	requests atomic.Int32
	queries  chan string // every q asked, in order
}

// newFake starts a registry whose nth request (from 1) is answered by handle.
func newFake(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{queries: make(chan string, 16)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/search" {
			http.NotFound(w, r)
			return
		}
		f.queries <- r.URL.Query().Get("q")
		handle(int(f.requests.Add(1)), w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// file answers 200 with testdata/name.
func file(t *testing.T, name string) func(int, http.ResponseWriter, *http.Request) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
}

func client(t *testing.T, f *fakeRegistry, o registry.Options) *registry.Client {
	t.Helper()
	o.URL = f.srv.URL + "/search"
	c, err := registry.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name, file, siret string
		want              registry.Organization
		wantErr           error
	}{
		{"a commune is named after its commune", "commune.json", "21930039400015",
			registry.Organization{Name: "L'Ile-Saint-Denis", IsPublicService: true, IsCommune: true}, nil},
		{"an establishment by its first shop sign", "enseigne.json", "55210055400021",
			registry.Organization{Name: "Garage Du Centre 2Eme Etage"}, nil},
		{"else by the company's name", "raison_sociale.json", "13002526500013",
			registry.Organization{Name: "Direction Interministerielle Du Numerique", IsPublicService: true}, nil},
		{"no establishment with this siret", "other_siret.json", "13002526500013", registry.Organization{}, registry.ErrNotFound},
		{"no result", "empty.json", "13002526500013", registry.Organization{}, registry.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, file(t, tt.file))
			got, err := client(t, f, registry.Options{}).Lookup(t.Context(), tt.siret)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Lookup() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Lookup() (-want +got):\n%s", diff)
			}
			if q := <-f.queries; q != tt.siret {
				t.Errorf("asked q=%q, want the siret %q", q, tt.siret)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	got := registry.Organization{Name: "X", IsPublicService: true}.Metadata()
	want := map[string]any{"is_public_service": true, "is_commune": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Metadata() (-want +got):\n%s", diff)
	}
}

// TestLookupRefusesNonSIRET: a registration id of another shape is never sent to the registry.
func TestLookupRefusesNonSIRET(t *testing.T) {
	f := newFake(t, file(t, "commune.json"))
	for _, id := range []string{"", "2193003940001", "219300394000150", "21930039400015 OR 1", "FR-12345678901234"} {
		if _, err := client(t, f, registry.Options{}).Lookup(t.Context(), id); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Lookup(%q) error = %v, want ErrNotFound", id, err)
		}
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d requests to the registry, want none", n)
	}
}

func TestLookupSlowRegistry(t *testing.T) {
	f := newFake(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	_, err := client(t, f, registry.Options{Timeout: 50 * time.Millisecond}).Lookup(t.Context(), "21930039400015")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lookup() error = %v, want the timeout", err)
	}
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1: a timeout is the caller's to retry later", n)
	}
}

func TestLookupFailingRegistry(t *testing.T) {
	f := newFake(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	_, err := client(t, f, registry.Options{}).Lookup(t.Context(), "21930039400015")
	if err == nil || errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), "500") {
		t.Errorf("Lookup() error = %v, want the 500, not ErrNotFound", err)
	}
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestLookupRateLimited(t *testing.T) {
	commune := file(t, "commune.json")
	t.Run("429 then 200", func(t *testing.T) {
		f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n < 3 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			commune(n, w, r)
		})
		got, err := client(t, f, registry.Options{}).Lookup(t.Context(), "21930039400015")
		if err != nil || got.Name != "L'Ile-Saint-Denis" {
			t.Errorf("Lookup() = %+v, %v; want the commune after two 429", got, err)
		}
		if n := f.requests.Load(); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})
	t.Run("attempts are bounded", func(t *testing.T) {
		f := newFake(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		_, err := client(t, f, registry.Options{MaxAttempts: 3}).Lookup(t.Context(), "21930039400015")
		if err == nil || errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Lookup() error = %v, want rate limited", err)
		}
		if n := f.requests.Load(); n != 3 {
			t.Errorf("%d requests, want MaxAttempts = 3", n)
		}
	})
	t.Run("a Retry-After beyond MaxRetryWait ends the lookup", func(t *testing.T) {
		f := newFake(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		_, err := client(t, f, registry.Options{}).Lookup(t.Context(), "21930039400015")
		if err == nil || !strings.Contains(err.Error(), "retry after 1h0m0s") {
			t.Errorf("Lookup() error = %v, want rate limited, retry after an hour", err)
		}
		if n := f.requests.Load(); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

func TestLookupBoundsTheAnswer(t *testing.T) {
	f := newFake(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"results":[{"nom_raison_sociale":"`))
		w.Write([]byte(strings.Repeat("A", 2<<20)))
		w.Write([]byte(`"}]}`))
	})
	_, err := client(t, f, registry.Options{}).Lookup(t.Context(), "21930039400015")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Lookup() error = %v, want the answer refused as too large", err)
	}
}

func TestNewRefusesBadURL(t *testing.T) {
	for _, u := range []string{"ftp://registry.example/search", "/search", "https://"} {
		if _, err := registry.New(registry.Options{URL: u}); err == nil {
			t.Errorf("New(%q) succeeded, want an error", u)
		}
	}
}

// TestTitle pins Python's str.title, as People's plugin names organizations.
func TestTitle(t *testing.T) {
	for in, want := range map[string]string{
		"MAIRIE DE L'ILE":         "Mairie De L'Ile",
		"L'ILE-SAINT-DENIS":       "L'Ile-Saint-Denis",
		"GARAGE 2EME ETAGE":       "Garage 2Eme Etage",
		"ÉCOLE ÉLÉMENTAIRE d'ÉTÉ": "École Élémentaire D'Été",
		"ǆemal":                   "ǅemal",
		"x²y ª b":                 "X²Y ª B",
		"déjà Title-cased":        "Déjà Title-Cased",
		"":                        "",
	} {
		if got := registry.Title(in); got != want {
			t.Errorf("Title(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLookupErrorsLeaveTheSIRETOut: the caller logs Lookup's errors, and the request's URL
// holds the SIRET.
func TestLookupErrorsLeaveTheSIRETOut(t *testing.T) {
	f := newFake(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	_, err := client(t, f, registry.Options{Timeout: 50 * time.Millisecond}).Lookup(t.Context(), "21930039400015")
	if err == nil || strings.Contains(err.Error(), "21930039400015") {
		t.Errorf("Lookup() error = %v, want one without the SIRET", err)
	}
}
