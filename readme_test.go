package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMEListsEveryVariable: the README's configuration table names every environment
// variable the server reads, and only those. The variables read are recorded while parsing
// environments that reach each conditional setting (a real provider with JWT introspection
// answers, SMTP, development, tracing).
func TestREADMEListsEveryVariable(t *testing.T) {
	read := map[string]bool{}
	for _, vars := range []map[string]string{
		{},
		{"ENVIRONMENT": "development"},
		{"DATABASE_URL": "postgres://u:p@127.0.0.1/db", "OIDC_OP_URL": "https://op.example", "OIDC_RP_CLIENT_SECRET": "secret",
			"SECRET_KEY": strings.Repeat("k", 32), "OIDC_OP_INTROSPECTION_ENDPOINT": "https://op.example/introspect",
			"OIDC_RS_CLIENT_ID": "people", "OIDC_RS_CLIENT_SECRET": "secret", "OIDC_RS_BACKEND": "jwt",
			"OIDC_OP_JWKS_ENDPOINT": "https://op.example/jwks", "EMAIL_HOST": "smtp.example", "EMAIL_HOST_USER": "u",
			"EMAIL_HOST_PASSWORD": "p", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel.example:4318", "CORS_ALLOWED_ORIGINS": "https://app.example"},
	} {
		parseConfig(func(k string) string { read[k] = true; return vars[k] })
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| (`[A-Z][A-Z0-9_]*`(?:, `[A-Z][A-Z0-9_]*`)*) \\|")
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		for _, name := range regexp.MustCompile("`([A-Z0-9_]+)`").FindAllStringSubmatch(m[1], -1) {
			listed[name[1]] = true
		}
	}
	var missing, stale []string
	for k := range read {
		if !listed[k] {
			missing = append(missing, k)
		}
	}
	for k := range listed {
		if !read[k] {
			stale = append(stale, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(stale)
	t.Logf("%d read, %d listed", len(read), len(listed))
	if len(missing) > 0 {
		t.Errorf("read but not in the README's configuration table: %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("in the README's configuration table but never read: %v", stale)
	}
}

// TestREADMEMovingFromPeople: the README's "Moving from People" table lists every People
// variable of peopleVars, with its action, and nothing else.
func TestREADMEMovingFromPeople(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### Moving from People\n")
	if !ok {
		t.Fatal("the README has no Moving from People section")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	listed := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)` \\| ([a-z]+) \\|").FindAllStringSubmatch(section, -1) {
		listed[m[1]] = m[2]
	}
	for _, v := range peopleVars {
		if got, ok := listed[v.name]; !ok {
			t.Errorf("%s is not in the README's Moving from People table", v.name)
		} else if got != string(v.action) {
			t.Errorf("%s is %q in the README, %q in peopleVars", v.name, got, v.action)
		}
		delete(listed, v.name)
	}
	for name := range listed {
		t.Errorf("%s is in the README's Moving from People table but not in peopleVars", name)
	}
}
