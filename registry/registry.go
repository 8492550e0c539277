// Package registry looks an establishment up by SIRET in the French companies registry
// (https://recherche-entreprises.api.gouv.fr, or ORGANIZATION_REGISTRY_URL), for the name and
// the metadata People's La Suite plugin gives an organization created from a SIRET at login.
//
// It imports none of this module's packages: Lookup returns what the registry says, and the
// caller decides what to write (store.NameOrganizationFromRegistry).
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// DefaultURL is the public registry's search API, the one People's plugin calls.
const DefaultURL = "https://recherche-entreprises.api.gouv.fr/search"

// Defaults of Options.
const (
	DefaultTimeout      = 10 * time.Second // People's plugin's
	DefaultMaxAttempts  = 4
	DefaultMaxRetryWait = 30 * time.Second
	// maxBody bounds an answer: a search by SIRET answers a few kilobytes.
	maxBody = 1 << 20
)

// communeNature is the legal nature (nature_juridique) of a commune in INSEE's nomenclature.
const communeNature = "7210"

// ErrNotFound says that the registry knows no establishment with this SIRET, or none with a
// usable name: asking again will not help.
var ErrNotFound = errors.New("registry: no establishment with this siret")

// Options configure New.
type Options struct {
	URL          string        // the search API; DefaultURL when empty
	Timeout      time.Duration // each request's, its answer read included; DefaultTimeout when 0
	MaxAttempts  int           // requests per Lookup while the registry answers 429; DefaultMaxAttempts when 0
	MaxRetryWait time.Duration // the longest Retry-After waited for; a longer one ends the Lookup; DefaultMaxRetryWait when 0
	HTTPClient   *http.Client  // nil: http.DefaultClient's transport (system roots, HTTPS_PROXY)
}

// Client asks the registry. It is safe for concurrent use.
type Client struct {
	url          *url.URL
	timeout      time.Duration
	maxAttempts  int
	maxRetryWait time.Duration
	http         *http.Client
}

// New checks o.URL and returns a client.
func New(o Options) (*Client, error) {
	raw := o.URL
	if raw == "" {
		raw = DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("registry: %q is not an http(s) URL", raw)
	}
	c := &Client{url: u, timeout: o.Timeout, maxAttempts: o.MaxAttempts, maxRetryWait: o.MaxRetryWait, http: o.HTTPClient}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if c.maxRetryWait <= 0 {
		c.maxRetryWait = DefaultMaxRetryWait
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	return c, nil
}

// Organization is what the registry says about an establishment.
type Organization struct {
	Name            string // title-cased as People's plugin does (Title)
	IsPublicService bool   // complements.est_service_public
	IsCommune       bool   // nature_juridique 7210
}

// Metadata is the organization's metadata as People's plugin writes it (its schema
// fr/organization_metadata.json).
func (o Organization) Metadata() map[string]any {
	return map[string]any{"is_public_service": o.IsPublicService, "is_commune": o.IsCommune}
}

// siretPattern is a SIRET: 14 digits.
var siretPattern = regexp.MustCompile(`^[0-9]{14}$`)

// ValidSIRET reports whether s is shaped as a SIRET: only those are sent to the registry, since
// registration ids may follow another pattern (ORGANIZATION_REGISTRATION_ID_PATTERN).
func ValidSIRET(s string) bool { return siretPattern.MatchString(s) }

// Lookup asks the registry about the establishment siret. It returns ErrNotFound when the
// registry has none with a name. On 429 it waits as Retry-After says (or a short backoff when
// it says nothing) and asks again, up to MaxAttempts requests; any other failure is returned at
// once, for the caller to retry later.
func (c *Client) Lookup(ctx context.Context, siret string) (Organization, error) {
	if !ValidSIRET(siret) {
		return Organization{}, ErrNotFound
	}
	for attempt := 1; ; attempt++ {
		o, wait, err := c.ask(ctx, siret)
		if wait < 0 || attempt >= c.maxAttempts {
			return o, err
		}
		if wait == 0 {
			wait = time.Duration(100<<(attempt-1)) * time.Millisecond // People's backoff_factor 0.1
		}
		if wait > c.maxRetryWait {
			return o, fmt.Errorf("%w (retry after %s)", err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Organization{}, ctx.Err()
		case <-t.C:
		}
	}
}

// errRateLimited is a 429 answer.
var errRateLimited = errors.New("registry: rate limited (429)")

// ask makes one request. wait is negative unless the registry answered 429: then it is how
// long Retry-After asks to wait, 0 when it asks nothing usable.
func (c *Client) ask(ctx context.Context, siret string) (Organization, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.url
	q := u.Query()
	q.Set("q", siret)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Organization{}, -1, fmt.Errorf("registry: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		// Without the URL, whose query is the SIRET: a sole trader's names a person, and the
		// caller logs this error.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Organization{}, -1, fmt.Errorf("registry: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return Organization{}, retryAfter(resp.Header.Get("Retry-After"), time.Now()), errRateLimited
	case resp.StatusCode != http.StatusOK:
		return Organization{}, -1, fmt.Errorf("registry: answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return Organization{}, -1, fmt.Errorf("registry: read the answer: %w", err)
	}
	if len(body) > maxBody {
		return Organization{}, -1, fmt.Errorf("registry: answer larger than %d bytes", maxBody)
	}
	var s searchAnswer
	if err := json.Unmarshal(body, &s); err != nil {
		return Organization{}, -1, fmt.Errorf("registry: decode the answer: %w", err)
	}
	o, ok := s.organization(siret)
	if !ok {
		return Organization{}, -1, ErrNotFound
	}
	return o, -1, nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// searchAnswer is the part of the search API's answer that People's plugin reads.
type searchAnswer struct {
	Results []struct {
		NomRaisonSociale string `json:"nom_raison_sociale"`
		NatureJuridique  code   `json:"nature_juridique"`
		Siege            struct {
			LibelleCommune string `json:"libelle_commune"`
		} `json:"siege"`
		Complements struct {
			EstServicePublic bool `json:"est_service_public"`
		} `json:"complements"`
		MatchingEtablissements []struct {
			SIRET          string   `json:"siret"`
			ListeEnseignes []string `json:"liste_enseignes"`
		} `json:"matching_etablissements"`
	} `json:"results"`
}

// organization follows People's plugin: the first result with an establishment of this SIRET
// names it, by its commune's name for a commune, else its first shop sign, else the company's
// name. A blank candidate is passed over (People would have kept the SIRET as name).
func (s searchAnswer) organization(siret string) (Organization, bool) {
	for _, r := range s.Results {
		for _, e := range r.MatchingEtablissements {
			if e.SIRET != siret {
				continue
			}
			o := Organization{IsPublicService: r.Complements.EstServicePublic, IsCommune: string(r.NatureJuridique) == communeNature}
			var candidates []string
			if o.IsCommune {
				candidates = append(candidates, r.Siege.LibelleCommune)
			}
			if len(e.ListeEnseignes) > 0 {
				candidates = append(candidates, e.ListeEnseignes[0])
			}
			candidates = append(candidates, r.NomRaisonSociale)
			for _, name := range candidates {
				if name = strings.TrimSpace(name); name != "" && !strings.ContainsRune(name, 0) {
					o.Name = Title(name)
					return o, true
				}
			}
		}
	}
	return Organization{}, false
}

// code is a JSON string or number, read as its text: People compares str(nature_juridique).
type code string

func (c *code) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = code(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*c = code(n)
		return nil
	}
	*c = "" // null, or a shape People's comparison would not match either
	return nil
}

// Title is Python's str.title, which People's plugin applies to names: a letter that follows
// a cased letter is lower-cased, any other is title-cased, so "MAIRIE DE L'ILE" is
// "Mairie De L'Ile" and "2EME" is "2Eme". Python's full case mappings (ß to Ss) are simple
// ones here.
func Title(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	cased := false
	for _, r := range s {
		if cased {
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(unicode.ToTitle(r))
		}
		cased = unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
			unicode.In(r, unicode.Other_Lowercase, unicode.Other_Uppercase)
	}
	return b.String()
}
