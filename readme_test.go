package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestConfigurationDocListsEveryVariable: the configuration reference (docs/configuration.md, which the
// README's Configuration section points to) names every environment variable the server reads,
// and only those. The variables read are recorded while parsing
// environments that reach each conditional setting (a real provider with JWT introspection
// answers, SMTP, development, tracing).
func TestConfigurationDocListsEveryVariable(t *testing.T) {
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
	readme, err := os.ReadFile("docs/configuration.md")
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
		t.Errorf("read but not in docs/configuration.md's table: %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("in docs/configuration.md's table but never read: %v", stale)
	}
}

// TestConfigurationDocPeopleVariables: the table of People's variables in docs/configuration.md
// lists every variable of peopleVars, with its action, and nothing else.
func TestConfigurationDocPeopleVariables(t *testing.T) {
	readme, err := os.ReadFile("docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## People's variables\n")
	if !ok {
		t.Fatal("docs/configuration.md has no People's variables section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	listed := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)` \\| ([a-z]+) \\|").FindAllStringSubmatch(section, -1) {
		listed[m[1]] = m[2]
	}
	for _, v := range peopleVars {
		if got, ok := listed[v.name]; !ok {
			t.Errorf("%s is not in docs/configuration.md's table of People's variables", v.name)
		} else if got != string(v.action) {
			t.Errorf("%s is %q in docs/configuration.md, %q in peopleVars", v.name, got, v.action)
		}
		delete(listed, v.name)
	}
	for name := range listed {
		t.Errorf("%s is in docs/configuration.md's table of People's variables but not in peopleVars", name)
	}
}

// TestREADMEShape: the README stays a guide for the people who run, integrate and operate the
// server: under 30 KB, every section reachable from the contents at its top, and every local
// link pointing at a file of the repository (the details live in docs/).
func TestREADMEShape(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	if len(b) >= 30<<10 {
		t.Errorf("README.md is %d bytes, want under 30 KB: move details to docs/", len(b))
	}
	contents, _, ok := strings.Cut(readme, "\n## ")
	if !ok {
		t.Fatal("README.md has no section")
	}
	for _, m := range regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatch(readme, -1) {
		anchor := strings.ToLower(strings.ReplaceAll(regexp.MustCompile(`[^\w\s-]`).ReplaceAllString(m[1], ""), " ", "-"))
		if !strings.Contains(contents, "](#"+anchor+")") {
			t.Errorf("section %q is not in the contents at the top (want a link to #%s)", m[1], anchor)
		}
	}
	for _, doc := range []string{"README.md", "docs/configuration.md", "docs/sign-in.md", "docs/partners.md", "docs/api.md", "docs/operators.md", "docs/moving-from-people.md", "bench/README.md"} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		for _, m := range regexp.MustCompile(`\]\(([^)#:]+\.md)(#[^)]*)?\)`).FindAllStringSubmatch(string(text), -1) {
			target := filepath.Join(filepath.Dir(doc), m[1])
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s links to %s, which does not exist", doc, m[1])
			}
		}
	}
}
