package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// tokenInfo is what the authorization server said about a token, once every check passed.
type tokenInfo struct {
	Subject  string    // sub: public, or pairwise for the calling service
	Audience string    // the calling service's client id (the claim named by AudienceClaim)
	Scopes   []string  // every scope granted to the token
	Email    string    // email, when given and not marked unverified
	Expiry   time.Time // exp; zero when the answer has none
}

// maxIntrospection bounds an introspection answer.
const maxIntrospection = 1 << 20

// clockSkew is how far the authorization server's clock may be ahead of ours for iat and nbf,
// or behind for the exp of a signed answer.
const clockSkew = 60 * time.Second

// errUnavailable marks failures of the authorization server itself: the client gets 503 and
// may retry, rather than a 401 that would have it throw a good token away.
var errUnavailable = errors.New("authorization server unavailable")

type introspector struct {
	cfg    ResourceServerConfig
	client *http.Client
	keys   *remoteKeys // jwt mode
}

// introspect asks the authorization server about token (RFC 7662) and checks the answer. It
// returns a *refusal, or an error wrapping errUnavailable.
func (in *introspector) introspect(ctx context.Context, token string) (*tokenInfo, error) {
	form := url.Values{"token": {token}}
	if in.cfg.ClientAuthMethod == ClientSecretPost {
		form.Set("client_id", in.cfg.ClientID)
		form.Set("client_secret", in.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.IntrospectionURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: introspection request: %v", errUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if in.cfg.Backend == BackendJWT {
		req.Header.Set("Accept", "application/token-introspection+jwt")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if in.cfg.ClientAuthMethod == ClientSecretBasic {
		// RFC 6749 §2.3.1: both are form-encoded before they are joined.
		req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	}
	resp, err := in.client.Do(req)
	if err != nil {
		// *url.Error names the endpoint and the cause; the token is in the body, not the URL.
		return nil, fmt.Errorf("%w: introspect: %v", errUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode < 200 || (resp.StatusCode >= 300 && resp.StatusCode < 400):
		return nil, fmt.Errorf("%w: introspection endpoint answered %d", errUnavailable, resp.StatusCode)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, &refusal{status: http.StatusUnauthorized, code: "invalid_token", desc: "the authorization server refused to introspect the token",
			err: fmt.Errorf("introspection endpoint answered %d: check OIDC_RS_CLIENT_ID, OIDC_RS_CLIENT_SECRET and OIDC_RS_CLIENT_AUTH_METHOD", resp.StatusCode), operator: true}
	case resp.StatusCode != http.StatusOK:
		return nil, badAnswer(fmt.Errorf("introspection endpoint answered %d", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospection+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read introspection: %v", errUnavailable, err)
	}
	if len(body) > maxIntrospection {
		return nil, badAnswer(fmt.Errorf("introspection answer larger than %d bytes", maxIntrospection))
	}
	var claims map[string]any
	if in.cfg.Backend == BackendJWT {
		claims, err = in.openJWT(ctx, body)
	} else {
		claims, err = in.openJSON(body)
	}
	if err != nil {
		return nil, err
	}
	return in.check(claims)
}

// badAnswer is a refusal for an answer we cannot trust: the token is not proven good.
func badAnswer(err error) *refusal {
	return &refusal{status: http.StatusUnauthorized, code: "invalid_token", desc: "the token could not be verified", err: err}
}

func invalidToken(desc string) *refusal {
	return &refusal{status: http.StatusUnauthorized, code: "invalid_token", desc: desc}
}

// openJSON reads an RFC 7662 answer, whose iss is optional (GitLab omits it) but checked when
// present.
func (in *introspector) openJSON(body []byte) (map[string]any, error) {
	claims, err := decodeObject(body)
	if err != nil {
		return nil, badAnswer(errors.New("introspection answer is not a JSON object"))
	}
	if iss, ok := claims["iss"]; ok && iss != in.cfg.Issuer {
		return nil, badAnswer(errors.New("introspection answer from another issuer"))
	}
	return claims, nil
}

// openJWT reads an RFC 9701 answer: a JWE, with only the configured alg and enc, around a JWS
// with only the configured signature algorithm (so never none nor HMAC), signed by a key of the
// authorization server's JWKS, whose claims carry token_introspection.
func (in *introspector) openJWT(ctx context.Context, body []byte) (map[string]any, error) {
	jwe, err := jose.ParseEncryptedCompact(string(bytes.TrimSpace(body)),
		[]jose.KeyAlgorithm{jose.KeyAlgorithm(in.cfg.EncryptionAlg)}, []jose.ContentEncryption{jose.ContentEncryption(in.cfg.EncryptionEnc)})
	if err != nil {
		return nil, badAnswer(fmt.Errorf("introspection answer is not a JWE with %s and %s: %v", in.cfg.EncryptionAlg, in.cfg.EncryptionEnc, err))
	}
	// node oidc-provider copies iss and aud into the JWE header (RFC 7519 §5.3): allowed, and
	// then they must agree with the signed claims' expectations.
	if iss, ok := jwe.Header.ExtraHeaders["iss"]; ok && iss != in.cfg.Issuer {
		return nil, badAnswer(errors.New("JWE header iss is not the authorization server"))
	}
	if aud, ok := jwe.Header.ExtraHeaders["aud"]; ok && !slices.Contains(audiences(aud), in.cfg.ClientID) {
		return nil, badAnswer(errors.New("JWE header aud does not name this resource server"))
	}
	plain, err := in.cfg.DecryptionKeys.decrypt(jwe)
	if err != nil {
		return nil, badAnswer(fmt.Errorf("decrypt introspection answer: %v", err))
	}
	jws, err := jwt.ParseSigned(string(plain), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(in.cfg.SigningAlg)})
	if err != nil {
		return nil, badAnswer(fmt.Errorf("introspection answer is not a JWS with %s: %v", in.cfg.SigningAlg, err))
	}
	keys, err := in.keys.verificationKeys(ctx, jws.Headers[0].KeyID, in.cfg.SigningAlg)
	if errors.Is(err, errUnknownKey) {
		return nil, badAnswer(errors.New("introspection answer signed with an unknown key"))
	} else if err != nil {
		return nil, err
	}
	var outer struct {
		jwt.Claims
		TokenIntrospection json.RawMessage `json:"token_introspection"`
	}
	err = errors.New("no key")
	for _, key := range keys {
		if err = jws.Claims(key.Key, &outer); err == nil {
			break
		}
	}
	if err != nil {
		return nil, badAnswer(fmt.Errorf("verify introspection answer: %v", err))
	}
	now := time.Now()
	switch {
	case outer.Issuer != in.cfg.Issuer:
		return nil, badAnswer(errors.New("introspection answer from another issuer"))
	case !outer.Audience.Contains(in.cfg.ClientID):
		return nil, badAnswer(errors.New("introspection answer for another audience"))
	case outer.IssuedAt != nil && outer.IssuedAt.Time().After(now.Add(clockSkew)):
		return nil, badAnswer(errors.New("introspection answer issued in the future"))
	case outer.NotBefore != nil && outer.NotBefore.Time().After(now.Add(clockSkew)):
		return nil, badAnswer(errors.New("introspection answer not valid yet"))
	case outer.Expiry != nil && now.Add(-clockSkew).After(outer.Expiry.Time()):
		return nil, badAnswer(errors.New("introspection answer expired"))
	}
	claims, err := decodeObject(outer.TokenIntrospection)
	if err != nil {
		return nil, badAnswer(errors.New("introspection answer has no token_introspection object"))
	}
	return claims, nil
}

// check applies the rules both modes share. The scope comes last: 403 insufficient_scope is
// for a token that is good in every other way.
func (in *introspector) check(claims map[string]any) (*tokenInfo, error) {
	if active, _ := claims["active"].(bool); !active {
		return nil, invalidToken("the token is not active")
	}
	var out tokenInfo
	if v, ok := claims["exp"]; ok {
		n, isNum := v.(json.Number)
		exp, err := n.Float64()
		if !isNum || err != nil {
			return nil, badAnswer(errors.New("introspection exp is not a number"))
		}
		out.Expiry = time.Unix(int64(exp), 0)
		if !time.Now().Before(out.Expiry) {
			return nil, invalidToken("the token has expired")
		}
	}
	if out.Subject, _ = claims["sub"].(string); out.Subject == "" {
		return nil, invalidToken("the token has no subject")
	}
	auds := slices.DeleteFunc(audiences(claims[in.cfg.AudienceClaim]), func(a string) bool { return a == in.cfg.ClientID })
	if len(auds) == 0 {
		auds = audiences(claims[in.cfg.AudienceClaim]) // a token for us alone: we are the caller
	}
	switch len(auds) {
	case 0:
		return nil, invalidToken("the token does not name the calling service")
	case 1:
		out.Audience = auds[0]
	default:
		return nil, invalidToken("the token names several services")
	}
	if email, ok := claims["email"].(string); ok && emailVouched(in.cfg.EmailVerifiedRequired, claims) {
		out.Email = strings.TrimSpace(email)
	}
	scope, _ := claims["scope"].(string)
	out.Scopes = strings.Fields(scope)
	if len(out.Scopes) == 0 {
		return nil, &refusal{status: http.StatusForbidden, code: "insufficient_scope", desc: "the token has no scope", scope: in.cfg.Scopes}
	}
	if !slices.ContainsFunc(out.Scopes, func(s string) bool { return slices.Contains(in.cfg.Scopes, s) }) {
		return nil, &refusal{status: http.StatusForbidden, code: "insufficient_scope", desc: "the token lacks the required scope", scope: in.cfg.Scopes}
	}
	return &out, nil
}

// audiences reads a string or an array of strings, keeping the non-empty ones.
func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		if strings.TrimSpace(a) != "" {
			return []string{a}
		}
	case []any:
		var out []string
		for _, e := range a {
			if s, ok := e.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// decodeObject decodes a JSON object, keeping numbers as json.Number.
func decodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil || d.More() {
		return nil, errors.New("not one JSON object")
	}
	return m, nil
}
