package auth

// Metrics counts the resource server's work for operators. The server implements it over its
// metrics library, so that auth imports none; a nil Metrics in ResourceServerConfig counts
// nothing.
type Metrics interface {
	// TokenCached is called when a bearer token is answered from the cache, whether with a
	// principal or with a refusal remembered for NegativeCacheTTL.
	TokenCached()
	// Introspected is called after each call to the authorization server, with its outcome:
	// IntrospectionActive, IntrospectionRefused or IntrospectionFailed.
	Introspected(outcome string)
	// CredentialChecked is called for each credential check that a CredentialCache could
	// answer: kind is CredentialSession or CredentialBearer, outcome CredentialHit,
	// CredentialMiss or CredentialBypass.
	CredentialChecked(kind, outcome string)
	// RateLimited is called when a token that is not cached is answered 429 instead of being
	// introspected: limit is LimitIntrospection or LimitIntrospectionConcurrency.
	RateLimited(limit string)
}

// Outcomes of an introspection, as Metrics.Introspected receives them.
const (
	IntrospectionActive  = "active"  // an active token that passed every check
	IntrospectionRefused = "refused" // inactive, or an answer that fails a check: the token is refused
	IntrospectionFailed  = "failed"  // the authorization server could not tell: unreachable, or an error status
)

type noMetrics struct{}

func (noMetrics) TokenCached()                     {}
func (noMetrics) Introspected(string)              {}
func (noMetrics) CredentialChecked(string, string) {}
func (noMetrics) RateLimited(string)               {}
