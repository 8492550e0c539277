package auth

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"lasuite.fr/people/ratelimit"
	"lasuite.fr/people/store"
	"lasuite.fr/people/wire"
)

// Introspection modes (OIDC_RS_BACKEND) and client authentication methods at the introspection
// endpoint (OIDC_RS_CLIENT_AUTH_METHOD).
const (
	BackendJSON       = "json" // RFC 7662: the answer is a JSON object
	BackendJWT        = "jwt"  // RFC 9701: the answer is signed, then encrypted for us (ProConnect)
	ClientSecretPost  = "client_secret_post"
	ClientSecretBasic = "client_secret_basic"
)

// ResourceServerConfig configures partner services' bearer tokens. The names in comments are
// People's settings, which the server reads from the environment.
type ResourceServerConfig struct {
	Issuer           string          // OIDC_OP_URL: the authorization server, the iss of its answers
	IntrospectionURL string          // OIDC_OP_INTROSPECTION_ENDPOINT
	JWKSURL          string          // OIDC_OP_JWKS_ENDPOINT: its signing keys, for jwt mode
	ClientID         string          // OIDC_RS_CLIENT_ID: ours at the authorization server
	ClientSecret     string          // OIDC_RS_CLIENT_SECRET
	ClientAuthMethod string          // OIDC_RS_CLIENT_AUTH_METHOD: ClientSecretPost (default) or ClientSecretBasic
	Backend          string          // OIDC_RS_BACKEND: BackendJSON (default) or BackendJWT
	DecryptionKeys   *DecryptionKeys // OIDC_RS_PRIVATE_KEY_STR: required in jwt mode
	EncryptionAlg    string          // OIDC_RS_ENCRYPTION_ALGO: the only JWE alg accepted; default RSA-OAEP
	EncryptionEnc    string          // OIDC_RS_ENCRYPTION_ENCODING: the only JWE enc accepted; default A256GCM
	SigningAlg       string          // OIDC_RS_SIGNING_ALGO: the only JWS alg accepted; default ES256
	Scopes           []string        // OIDC_RS_SCOPES: a token needs one of them; default groups
	AudienceClaim    string          // OIDC_RS_AUDIENCE_CLAIM: names the calling service; default aud
	FallbackToEmail  bool            // OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION
	Timeout          time.Duration   // OIDC_TIMEOUT: one call to the authorization server; default 5s
	CacheTTL         time.Duration   // OIDC_RS_INTROSPECTION_CACHE_TTL: longest a good answer is kept; default 60s
	NegativeCacheTTL time.Duration   // how long a refusal is kept; default 5s
	CacheSize        int             // good tokens remembered; default 10000
	// NegativeCacheSize bounds the refusals remembered, apart from the good tokens so that
	// made-up tokens cannot push those out; default 10000.
	NegativeCacheSize int
	// MaxConcurrentIntrospections bounds the tokens being resolved at once, by all clients
	// together (INTROSPECTION_MAX_CONCURRENCY); beyond it a token that is not cached is
	// answered 429 at once; default 16.
	MaxConcurrentIntrospections int
	// IntrospectionBudget, when set, is spent once for each token resolved, by the client that
	// sent it (ClientKey), before any call goes out: 429 when it is empty (INTROSPECTION_RATE_LIMIT).
	IntrospectionBudget Budget
	// ClientKey names the client of a request for IntrospectionBudget: the server gives its
	// client address, read as its other rate limits read it (TRUSTED_PROXIES). nil: all
	// clients share one budget.
	ClientKey      func(*http.Request) string
	JWKSMinRefresh time.Duration // least time between two key set fetches for an unknown kid; default 5s
	JWKSMaxAge     time.Duration // key set age after which it is fetched again; default 1h
	HTTPClient     *http.Client  // nil: one with Timeout that follows no redirect
	Metrics        Metrics       // counts introspections and cache hits; nil counts nothing
	// Cache remembers which users are active between requests (SESSION_CACHE_TTL); nil asks
	// the database for every request.
	Cache *CredentialCache
	// EmailVerifiedRequired is OIDC_EMAIL_VERIFIED_DEFAULT=false: the email finds a user only
	// when the answer says email_verified: true (see emailVouched).
	EmailVerifiedRequired bool
}

// Enabled reports whether enough is configured to introspect tokens: without it, the server
// runs, and bearer tokens are refused.
func (c ResourceServerConfig) Enabled() bool {
	return c.Issuer != "" && c.IntrospectionURL != "" && c.ClientID != "" && c.ClientSecret != ""
}

// signingAlgs are the signature algorithms an introspection answer may use: asymmetric only,
// so neither none nor an HMAC keyed with a public key can pass.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

var contentEncryptions = []jose.ContentEncryption{
	jose.A128GCM, jose.A192GCM, jose.A256GCM, jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512,
}

func (c *ResourceServerConfig) setDefaults() error {
	c.Backend = cmp.Or(c.Backend, BackendJSON)
	c.ClientAuthMethod = cmp.Or(c.ClientAuthMethod, ClientSecretPost)
	c.EncryptionAlg = cmp.Or(c.EncryptionAlg, string(jose.RSA_OAEP))
	c.EncryptionEnc = cmp.Or(c.EncryptionEnc, string(jose.A256GCM))
	c.SigningAlg = cmp.Or(c.SigningAlg, string(jose.ES256))
	c.AudienceClaim = cmp.Or(c.AudienceClaim, "aud")
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"groups"}
	}
	c.Timeout = cmp.Or(c.Timeout, 5*time.Second)
	c.CacheTTL = cmp.Or(c.CacheTTL, 60*time.Second)
	c.NegativeCacheTTL = cmp.Or(c.NegativeCacheTTL, 5*time.Second)
	c.CacheSize = cmp.Or(c.CacheSize, 10000)
	c.NegativeCacheSize = cmp.Or(c.NegativeCacheSize, 10000)
	c.MaxConcurrentIntrospections = cmp.Or(c.MaxConcurrentIntrospections, 16)
	if c.ClientKey == nil {
		c.ClientKey = func(*http.Request) string { return "" }
	}
	c.JWKSMinRefresh = cmp.Or(c.JWKSMinRefresh, 5*time.Second)
	c.JWKSMaxAge = cmp.Or(c.JWKSMaxAge, time.Hour)
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	switch {
	case c.Backend != BackendJSON && c.Backend != BackendJWT:
		return fmt.Errorf("unknown introspection backend %q", c.Backend)
	case c.ClientAuthMethod != ClientSecretPost && c.ClientAuthMethod != ClientSecretBasic:
		return fmt.Errorf("unknown client authentication method %q", c.ClientAuthMethod)
	case c.Backend == BackendJSON:
		return nil
	case c.DecryptionKeys == nil:
		return errors.New("the jwt backend needs a decryption key")
	case c.DecryptionKeys.alg != jose.KeyAlgorithm(c.EncryptionAlg):
		return fmt.Errorf("the decryption keys are for %s, not %s", c.DecryptionKeys.alg, c.EncryptionAlg)
	case !slices.Contains(contentEncryptions, jose.ContentEncryption(c.EncryptionEnc)):
		return fmt.Errorf("unsupported content encryption %q", c.EncryptionEnc)
	case !slices.Contains(signingAlgs, jose.SignatureAlgorithm(c.SigningAlg)):
		return fmt.Errorf("unsupported signing algorithm %q: use an asymmetric one such as ES256", c.SigningAlg)
	case c.JWKSURL == "":
		return errors.New("the jwt backend needs the authorization server's JWKS endpoint")
	}
	return nil
}

// ResourceServer authenticates partner services: it turns a bearer token into a Principal by
// introspecting it at the authorization server (RFC 7662, or RFC 9701 in jwt mode), finding
// the user by subject, and the calling service by audience.
type ResourceServer struct {
	cfg     ResourceServerConfig
	enabled bool
	store   *store.Store
	log     *slog.Logger
	in      *introspector
	cache   *tokenCache
	slots   chan struct{} // one per token being resolved: MaxConcurrentIntrospections
}

// Budget limits how often each client may have the resource server ask the authorization
// server about a token. The server's implementation is its rate limiter (package ratelimit), shared
// by every instance through Redis when REDIS_URL is set.
type Budget interface {
	// Spend takes one call from key's budget and returns 0, or takes nothing and returns how
	// long until one is available.
	Spend(key string) time.Duration
}

// Names of the limits on introspection, as Metrics.RateLimited receives them.
const (
	LimitIntrospection            = "introspection"             // the client's IntrospectionBudget is spent
	LimitIntrospectionConcurrency = "introspection_concurrency" // MaxConcurrentIntrospections are under way
)

// NewResourceServer checks cfg and builds the resource server. When cfg is not Enabled, the
// resource server refuses every bearer token, as People's "improperly configured" backend does.
func NewResourceServer(cfg ResourceServerConfig, s *store.Store, log *slog.Logger) (*ResourceServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rs := &ResourceServer{enabled: cfg.Enabled(), store: s, log: log}
	if err := cfg.setDefaults(); err != nil && rs.enabled {
		return nil, err
	}
	rs.cfg = cfg
	if !rs.enabled {
		return rs, nil
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{
			Timeout: cfg.Timeout,
			// A redirect would carry the token, and for client_secret_post our secret, elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	var err error
	if rs.cache, err = newTokenCache(cfg.CacheSize, cfg.NegativeCacheSize, cfg.Metrics); err != nil {
		return nil, err
	}
	rs.slots = make(chan struct{}, cfg.MaxConcurrentIntrospections)
	rs.in = &introspector{cfg: cfg, client: client}
	if cfg.Backend == BackendJWT {
		rs.in.keys = &remoteKeys{url: cfg.JWKSURL, client: client, minRefresh: cfg.JWKSMinRefresh, maxAge: cfg.JWKSMaxAge}
	}
	return rs, nil
}

// JWKS serves the public half of the decryption keys (GET /jwks): an empty set without them.
func (rs *ResourceServer) JWKS() http.Handler { return rs.cfg.DecryptionKeys }

// Middleware authenticates requests that carry an Authorization header, and answers 401 or 403
// (RFC 6750) when the header or the token is bad, or 503 when the authorization server cannot
// tell. A request without the header goes on anonymously (a session may still identify it);
// if an operation then refuses it for want of a caller, the response becomes 401 with a Bearer
// challenge.
func (rs *ResourceServer) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values, present := r.Header["Authorization"]
		if !present {
			c := new(challenge)
			next.ServeHTTP(&challengeWriter{ResponseWriter: w, c: c}, r.WithContext(context.WithValue(r.Context(), challengeKey{}, c)))
			return
		}
		token, ok := bearerToken(values)
		if !ok {
			rs.log.WarnContext(r.Context(), "bearer token refused", "reason", "malformed authorization header")
			refuse(w, r, &refusal{status: http.StatusUnauthorized, code: "invalid_request", desc: "the Authorization header must be: Bearer <token>"})
			return
		}
		if !rs.enabled {
			rs.log.WarnContext(r.Context(), "bearer token refused", "reason", "resource server not configured")
			refuse(w, r, invalidToken("the resource server is not configured"))
			return
		}
		e := rs.cache.resolve(token, func() cacheEntry { return rs.admit(r, token) })
		if e.refusal != nil {
			refuse(w, r, e.refusal)
			return
		}
		// The principal may come from the introspection cache, which a deactivation does not
		// reach: whether the user is still active is read from the database (one indexed read),
		// or from the credential cache, which the database's announcement of a deactivation or
		// deletion empties of the user on every instance.
		if !rs.cfg.Cache.active(e.principal.UserID) {
			gen := rs.cfg.Cache.generation()
			active, err := rs.store.UserIsActive(r.Context(), e.principal.UserID)
			if err != nil {
				refuse(w, r, rs.refused(r.Context(), fmt.Errorf("check user: %w", err)).refusal)
				return
			}
			if !active {
				refuse(w, r, rs.refused(r.Context(), invalidToken("the user is not active")).refusal)
				return
			}
			rs.cfg.Cache.putActive(gen, e.principal.UserID)
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), e.principal)))
	})
}

// admit resolves a token that is not cached, unless MaxConcurrentIntrospections are under way
// or the client's IntrospectionBudget is spent: then nothing goes out, and the client gets 429.
// A made-up token is new every time, so without these each request of a flood would cost a
// call made with our credentials. The slot is taken first, so that a refusal for want of one
// spends no budget.
func (rs *ResourceServer) admit(r *http.Request, token string) cacheEntry {
	select {
	case rs.slots <- struct{}{}:
		defer func() { <-rs.slots }()
	default:
		return rs.limited(r.Context(), LimitIntrospectionConcurrency, time.Second)
	}
	if b := rs.cfg.IntrospectionBudget; b != nil {
		if wait := b.Spend(rs.cfg.ClientKey(r)); wait > 0 {
			return rs.limited(r.Context(), LimitIntrospection, wait)
		}
	}
	return rs.resolve(r.Context(), token)
}

// limited is the refusal of a token that was not resolved for a limit's sake: it says nothing
// about the token, so it is not kept.
func (rs *ResourceServer) limited(ctx context.Context, limit string, wait time.Duration) cacheEntry {
	rs.cfg.Metrics.RateLimited(limit)
	rs.log.WarnContext(ctx, "rate limited", "limit", limit, "principal", "bearer", "retry_after", ratelimit.RetryAfter(wait))
	return cacheEntry{refusal: &refusal{status: http.StatusTooManyRequests, desc: "too many requests: retry later", retryAfter: wait}}
}

// resolve turns a token into a principal, or a refusal, once per cache entry. It outlives a
// client that gives up, since other requests may be waiting for the same answer.
func (rs *ResourceServer) resolve(ctx context.Context, token string) cacheEntry {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*rs.cfg.Timeout)
	defer cancel()
	in, err := rs.in.introspect(ctx, token)
	if _, ok := errors.AsType[*refusal](err); ok {
		rs.cfg.Metrics.Introspected(IntrospectionRefused)
		return rs.refused(ctx, err)
	} else if err != nil {
		rs.cfg.Metrics.Introspected(IntrospectionFailed)
		return rs.refused(ctx, err)
	}
	rs.cfg.Metrics.Introspected(IntrospectionActive)
	var email string
	if rs.cfg.FallbackToEmail {
		email = in.Email
	}
	// Bearer tokens never create users: the user must have signed in once, or be known by email.
	u, err := rs.store.UserByIdentity(ctx, store.Identity{Issuer: rs.cfg.Issuer, Subject: in.Subject, Audience: in.Audience}, email)
	switch store.KindOf(err) {
	case 0:
	case store.KindNotFound:
		return rs.refused(ctx, invalidToken("no user is known for this token"))
	case store.KindForbidden:
		return rs.refused(ctx, invalidToken("the user is not active"))
	case store.KindConflict:
		return rs.refused(ctx, invalidToken("the user cannot be identified"))
	default:
		return rs.refused(ctx, fmt.Errorf("find user by subject: %w", err))
	}
	sp, err := rs.store.ServiceProviderByAudience(ctx, in.Audience)
	if store.KindOf(err) == store.KindInvalid {
		return rs.refused(ctx, invalidToken("the token names an invalid service"))
	} else if err != nil {
		return rs.refused(ctx, fmt.Errorf("find service provider: %w", err))
	}
	expires := time.Now().Add(rs.cfg.CacheTTL)
	if !in.Expiry.IsZero() && in.Expiry.Before(expires) {
		expires = in.Expiry
	}
	return cacheEntry{
		principal: Principal{UserID: u.ID, Method: MethodBearer, Audience: in.Audience, Scopes: in.Scopes, ServiceProviderID: sp.ID},
		expires:   expires,
	}
}

// refused logs why a token was refused and makes the cache entry. A refusal about the token is
// kept for NegativeCacheTTL; an outage (errUnavailable, or our database) is not kept at all.
// Log lines carry our reasons, never the token nor the authorization server's answer.
func (rs *ResourceServer) refused(ctx context.Context, err error) cacheEntry {
	var ref *refusal
	if !errors.As(err, &ref) {
		desc := "authentication is unavailable, try again later"
		if errors.Is(err, errUnavailable) {
			desc = "the authorization server is unavailable, try again later"
		}
		rs.log.ErrorContext(ctx, "bearer token not verified", "reason", desc, "err", err)
		return cacheEntry{refusal: &refusal{status: http.StatusServiceUnavailable, desc: desc, err: err}}
	}
	attrs := []any{"reason", ref.desc}
	if ref.err != nil {
		attrs = append(attrs, "err", ref.err)
	}
	if ref.operator {
		rs.log.ErrorContext(ctx, "bearer token not verified", attrs...)
	} else {
		rs.log.WarnContext(ctx, "bearer token refused", attrs...)
	}
	return cacheEntry{refusal: ref, expires: time.Now().Add(rs.cfg.NegativeCacheTTL)}
}

// refusal is a bearer request answered with an error (RFC 6750 §3.1).
type refusal struct {
	status   int      // 401, 403, 429 or 503
	code     string   // invalid_request, invalid_token or insufficient_scope; empty for 429 and 503
	desc     string   // for the client: fixed phrases, never the token or the server's answer
	scope    []string // insufficient_scope: the scopes that would do
	err      error    // for the log
	operator bool     // an operator must act (bad client credentials): logged as an error
	// retryAfter is when a 429 may be retried; it goes out as Retry-After and
	// extensions.retryAfter, as the server's other rate limits say it.
	retryAfter time.Duration
}

func (r *refusal) Error() string { return r.desc }

// refuse writes ref as the API's error (wire), so that clients read one format: GraphQL's, or
// People's on its partner REST paths.
func refuse(w http.ResponseWriter, r *http.Request, ref *refusal) {
	e := wire.Error{Code: wire.CodeUnauthenticated, Message: ref.desc}
	switch ref.status {
	case http.StatusForbidden:
		e.Code = wire.CodeForbidden
	case http.StatusTooManyRequests:
		e.Code, e.RetryAfter = wire.CodeRateLimited, ratelimit.RetryAfter(ref.retryAfter)
	case http.StatusServiceUnavailable:
		e.Code, e.RetryAfter = wire.CodeUnavailable, wire.RetryAfterUnavailable
	}
	if ref.code != "" {
		v := fmt.Sprintf(`Bearer error=%q, error_description=%q`, ref.code, ref.desc)
		if len(ref.scope) > 0 {
			v += fmt.Sprintf(`, scope=%q`, strings.Join(ref.scope, " "))
		}
		w.Header().Set("WWW-Authenticate", v)
	}
	wire.Respond(w, r, ref.status, e)
}

// maxTokenLength bounds a bearer token; real ones are well under 4 KiB.
const maxTokenLength = 8 << 10

// bearerToken reads the token of "Authorization: Bearer <token>" (one header, one space, a
// token of visible ASCII). Some services send the token base64-encoded, which People decodes
// leniently: here only strict, padded standard base64 whose result is printable UTF-8 is
// decoded, and anything else is taken as sent.
func bearerToken(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxTokenLength {
		return "", false
	}
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] >= 0x7f {
			return "", false
		}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(token)
	if err != nil || len(b) == 0 || !utf8.Valid(b) {
		return token, true
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return token, true
		}
	}
	return string(b), true
}

// challenge is how a GraphQL operation tells the middleware that it refused an anonymous
// request: Require notes it, and challengeWriter turns the 200 that gqlgen writes afterwards
// into 401 with a Bearer challenge. Only requests without an Authorization header carry one.
type challenge struct{ needed atomic.Bool }

type challengeKey struct{}

// noteUnauthenticated records that the request needed a caller and had none.
func noteUnauthenticated(ctx context.Context) {
	if c, ok := ctx.Value(challengeKey{}).(*challenge); ok {
		c.needed.Store(true)
	}
}

type challengeWriter struct {
	http.ResponseWriter
	c     *challenge
	wrote bool
}

func (w *challengeWriter) WriteHeader(status int) {
	if !w.wrote {
		w.wrote = true
		if status == http.StatusOK && w.c.needed.Load() {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request", error_description="authentication required"`)
			status = http.StatusUnauthorized
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *challengeWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming transports working through the wrapper.
func (w *challengeWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
