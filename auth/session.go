package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"lasuite.fr/people/store"
	"lasuite.fr/people/wire"
)

// SessionOptions configure browser sessions and the origins trusted with their cookie.
type SessionOptions struct {
	// CookieSecure marks the cookie Secure and names it with the __Host- prefix, which makes
	// browsers refuse it unless it is Secure, host-only and for Path=/ (SESSION_COOKIE_SECURE).
	CookieSecure bool
	// CookieAge is a session's absolute lifetime (SESSION_COOKIE_AGE); 0 means 12 hours, as
	// ProConnect's sessions.
	CookieAge time.Duration
	// PublicOrigin is the server's own origin, scheme://host[:port] (from PUBLIC_URL).
	PublicOrigin string
	// AllowedOrigins are the frontends that may call the API with the cookie
	// (CORS_ALLOWED_ORIGINS), as scheme://host[:port].
	AllowedOrigins []string
	// Cache remembers live sessions between requests (SESSION_CACHE_TTL); nil reads the
	// database for every request with a cookie.
	Cache *CredentialCache
}

// Sessions opens, resolves and ends server-side browser sessions. The cookie holds 32 random
// bytes; the database holds their SHA-256 with the user, the provider's sid and the ID token
// logout needs. It also guards the API against cross-site requests that carry the cookie
// (csrf.go).
type Sessions struct {
	store   *store.Store
	log     *slog.Logger
	secure  bool
	age     time.Duration
	name    string
	public  string
	allowed map[string]bool
	cache   *CredentialCache
}

// Cookie names: browsers only accept a __Host- cookie that is Secure, has Path=/ and no
// Domain, so no sibling subdomain or plain-HTTP page can plant or shadow it.
const (
	sessionCookie       = "people_session"
	secureSessionCookie = "__Host-people_session"
)

// touchEvery bounds how often a session's last_seen_at is written.
const touchEvery = time.Minute

// NewSessions returns the session manager. An origin that is not scheme://host[:port] is
// logged and trusted for nothing (parseConfig refuses such values before they get here).
func NewSessions(s *store.Store, o SessionOptions, log *slog.Logger) *Sessions {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.CookieAge <= 0 {
		o.CookieAge = 12 * time.Hour
	}
	ss := &Sessions{store: s, log: log, secure: o.CookieSecure, age: o.CookieAge, name: sessionCookie, allowed: map[string]bool{}, cache: o.Cache}
	if o.CookieSecure {
		ss.name = secureSessionCookie
	}
	if origin, err := ParseOrigin(o.PublicOrigin); err == nil {
		ss.public = origin
	} else if o.PublicOrigin != "" {
		log.Error("public origin ignored", "origin", o.PublicOrigin, "err", err)
	}
	for _, a := range o.AllowedOrigins {
		origin, err := ParseOrigin(a)
		if err != nil {
			log.Error("allowed origin ignored", "origin", a, "err", err)
			continue
		}
		ss.allowed[origin] = true
	}
	return ss
}

// Start opens a session for a user who has just logged in. Every login gets a new random id,
// and the session the browser carried, if any, is deleted: an id planted before login
// (session fixation) never becomes an authenticated one.
func (s *Sessions) Start(w http.ResponseWriter, r *http.Request, in store.NewSession) error {
	if err := s.endCarried(r); err != nil {
		return err
	}
	raw := make([]byte, 32)
	rand.Read(raw) // never fails (crypto/rand panics rather than return a short read)
	token := base64.RawURLEncoding.EncodeToString(raw)
	hash := sha256.Sum256(raw)
	if _, err := s.store.CreateSession(r.Context(), hash[:], in, s.age); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	http.SetCookie(w, s.cookie(token, int(s.age/time.Second)))
	s.log.InfoContext(r.Context(), "session started", "user_id", in.UserID)
	return nil
}

// endCarried deletes the session whose cookie the request carries, if any.
func (s *Sessions) endCarried(r *http.Request) error {
	hash, ok := s.tokenHash(r)
	if !ok {
		return nil
	}
	_, err := s.store.DeleteSession(r.Context(), hash)
	s.cache.forgetSessions(hash)
	if err != nil && store.KindOf(err) != store.KindNotFound {
		return fmt.Errorf("end previous session: %w", err)
	}
	return nil
}

// End logs the browser out: it deletes the request's session and clears the cookie. It
// returns the ended session, expired or not, with what RP-initiated logout needs (IDToken for
// id_token_hint, Subject, SID); false when the request carried none.
func (s *Sessions) End(w http.ResponseWriter, r *http.Request) (store.Session, bool, error) {
	hash, ok := s.tokenHash(r)
	if _, err := r.Cookie(s.name); err == nil {
		http.SetCookie(w, s.cookie("", -1))
	}
	if !ok {
		return store.Session{}, false, nil
	}
	ses, err := s.store.DeleteSession(r.Context(), hash)
	// This instance forgets it before answering; the others when the database announces it.
	s.cache.forgetSessions(hash)
	switch store.KindOf(err) {
	case 0:
		s.log.InfoContext(r.Context(), "session ended", "user_id", ses.UserID)
		return *ses, true, nil
	case store.KindNotFound:
		return store.Session{}, false, nil
	}
	return store.Session{}, false, fmt.Errorf("end session: %w", err)
}

// EndByProvider ends the sessions an OpenID back-channel logout token names: the one with sid
// (and subject, when the token has both), or every session of subject when it has no sid. It
// returns how many ended.
func (s *Sessions) EndByProvider(ctx context.Context, issuer, sid, subject string) (int, error) {
	hashes, err := s.store.DeleteSessionsByProvider(ctx, issuer, sid, subject)
	if err != nil {
		return 0, fmt.Errorf("end sessions by provider: %w", err)
	}
	s.cache.forgetSessions(hashes...)
	return len(hashes), nil
}

// Middleware authenticates a request by its session cookie. A principal already set (by the
// bearer middleware) is kept, and a request with an Authorization header is judged by that
// header alone, so a partner service's call never acts with a browser's cookie. An unknown,
// expired or deactivated user's cookie makes the request anonymous and is cleared. The session
// is read from the database, or from the cache (SessionOptions.Cache) while the database has
// announced nothing that ends it.
func (s *Sessions) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := PrincipalFrom(r.Context()); ok || len(r.Header.Values("Authorization")) > 0 {
			next.ServeHTTP(w, r)
			return
		}
		if _, err := r.Cookie(s.name); err != nil {
			next.ServeHTTP(w, r)
			return
		}
		hash, ok := s.tokenHash(r)
		if !ok {
			http.SetCookie(w, s.cookie("", -1))
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		ses, ok := s.cache.session(hash)
		if !ok {
			gen := s.cache.generation()
			found, err := s.store.SessionByToken(ctx, hash)
			switch store.KindOf(err) {
			case 0:
			case store.KindNotFound:
				http.SetCookie(w, s.cookie("", -1))
				next.ServeHTTP(w, r)
				return
			case store.KindUnavailable:
				// Not anonymous: the person is probably logged in, and answering as if they were
				// not would show them a logged-out page until the database is back. The answer
				// is the GraphQL handler's for the same outage (wire.Unavailable).
				s.log.ErrorContext(ctx, "session lookup failed", "err", err)
				wire.Write(w, http.StatusServiceUnavailable, wire.Unavailable(""))
				return
			default:
				s.log.ErrorContext(ctx, "session lookup failed", "err", err)
				wire.Write(w, http.StatusInternalServerError, wire.Error{Code: wire.CodeInternal, Message: "internal error"})
				return
			}
			ses = s.cache.putSession(gen, hash, found)
		}
		if now := time.Now(); now.Sub(ses.lastSeen) >= touchEvery {
			if err := s.store.TouchSession(ctx, ses.id); err == nil {
				s.cache.touched(hash, now)
			} else if !errors.Is(err, context.Canceled) {
				s.log.WarnContext(ctx, "session touch failed", "err", err)
			}
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(ctx, Principal{UserID: ses.userID, Method: MethodSession})))
	})
}

// Purge deletes expired sessions and those of deactivated users.
func (s *Sessions) Purge(ctx context.Context) (int, error) {
	return s.store.PurgeSessions(ctx)
}

// PurgeEvery purges at once and then every interval, until ctx is done.
func (s *Sessions) PurgeEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Purge(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.ErrorContext(ctx, "session purge failed", "err", err)
		case n > 0:
			s.log.InfoContext(ctx, "sessions purged", "sessions", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tokenHash returns the SHA-256 of the request's session id, when it carries a well-formed one.
func (s *Sessions) tokenHash(r *http.Request) ([]byte, bool) {
	c, err := r.Cookie(s.name)
	if err != nil || len(c.Value) != base64.RawURLEncoding.EncodedLen(32) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil, false
	}
	hash := sha256.Sum256(raw)
	return hash[:], true
}

// cookie is the session cookie with value; maxAge < 0 deletes it. A deletion needs the same
// attributes as the cookie it replaces: browsers ignore a __Host- cookie without Secure.
func (s *Sessions) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: s.name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: s.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
}
