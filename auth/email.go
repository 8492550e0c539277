package auth

// emailVouched is the one rule, for browser logins and partner tokens alike, by which the
// provider vouches for the email its claims carry: email_verified must be the JSON value true.
// Present with any other value (false, "false", even "true" as a string, null) it does not
// vouch, whatever the other sources say. Absent from every source, requireClaim decides
// (OIDC_EMAIL_VERIFIED_DEFAULT=false sets it): ProConnect vouches for every email it gives
// (its identity providers are the agents' administrations) without always sending the claim,
// while a generic provider may let anyone type any address.
//
// An email it does not vouch for must never identify anyone: it would let whoever types
// another's address at such a provider take over that person's account, invitations or staff
// account (see store.Claims.EmailVerified).
func emailVouched(requireClaim bool, sources ...map[string]any) bool {
	seen := false
	for _, claims := range sources {
		v, ok := claims["email_verified"]
		if !ok {
			continue
		}
		if v != true {
			return false
		}
		seen = true
	}
	return seen || !requireClaim
}
