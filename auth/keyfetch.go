package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// keysMinRefetch is the least time between two fetches of the login provider's key set.
const keysMinRefetch = 10 * time.Second

// errKeysThrottled is a key set fetch refused because one went out less than the interval
// ago without an answer to reuse.
var errKeysThrottled = errors.New("provider key set fetched too recently")

// keyFetches throttles the relying party's fetches of the provider's key set. zitadel/oidc's
// remote key set fetches it again for every signature whose kid it does not know, coalescing
// only fetches in flight at the same moment; /auth/backchannel-logout takes tokens from anyone,
// so a flood of tokens under random kids would be a flood of fetches at the provider. Here a
// fetch goes out at most once per interval; within it, the last good answer is given again
// (the kid stays unknown and the token is refused), or, without one, errKeysThrottled. A key
// the provider has just published is therefore known at most one interval late.
type keyFetches struct {
	interval time.Duration

	mu   sync.Mutex
	url  string    // jwks_uri, from the discovery document
	last time.Time // when the last fetch went out
	body []byte    // the last good answer
	typ  string    // its Content-Type
}

// setURL notes jwks_uri as requests for it will spell it (http.NewRequest parses it).
func (k *keyFetches) setURL(raw string) {
	u, err := url.Parse(raw)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.url = ""
	if err == nil && raw != "" {
		k.url = u.String()
	}
}

func (k *keyFetches) is(u string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.url != "" && u == k.url
}

func (k *keyFetches) roundTrip(next http.RoundTripper, r *http.Request) (*http.Response, error) {
	k.mu.Lock()
	if !k.last.IsZero() && time.Since(k.last) < k.interval {
		body, typ := k.body, k.typ
		k.mu.Unlock()
		if body == nil {
			return nil, errKeysThrottled
		}
		return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {typ}}, Body: io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)), Request: r}, nil
	}
	// The slot is taken before the fetch, so that callers meanwhile do not fetch too.
	k.last = time.Now()
	k.mu.Unlock()
	resp, err := next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("jwks larger than %d bytes", maxJWKS)
	}
	k.mu.Lock()
	k.body, k.typ = body, resp.Header.Get("Content-Type")
	k.mu.Unlock()
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return resp, nil
}
