package store

import (
	"net/mail"
	"strings"
)

// NormalizeEmail checks that s is a bare email address (no display name, no angle brackets)
// and lower-cases its domain, as Django's normalize_email does; field names the input.
func NormalizeEmail(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	at := strings.LastIndexByte(s, '@')
	if err != nil || a.Address != s || a.Name != "" || at < 1 || len(s) > 254 {
		return "", invalid(field, "enter a valid email address")
	}
	return s[:at] + "@" + strings.ToLower(s[at+1:]), nil
}
