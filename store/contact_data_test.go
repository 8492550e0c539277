package store_test

import (
	"encoding/json"
	"testing"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// TestContactData checks that ValidateContactData and the database's contact_data_valid give
// the same verdict on each document, and the expected one.
func TestContactData(t *testing.T) {
	s := storetest.Open(t)
	tests := []struct {
		name, doc string
		valid     bool
	}{
		{"empty object", `{}`, true},
		{"every list", `{
			"emails": [{"type": "Work", "value": "jane@example.fr"}, {"type": "Home", "value": "j@x"}],
			"phones": [{"type": "Work Fax", "value": "+33 1 23 45 67 89"}],
			"addresses": [{"type": "Home", "street": "1 rue", "city": "Paris", "state": "", "zip": "75001", "country": "France"}],
			"links": [{"type": "LinkedIn", "value": "https://example.com/jane"}],
			"customFields": {"badge": "42", "": ""},
			"organizations": [{"name": "DINUM", "department": "Étalab", "jobTitle": "dev"}]}`, true},
		{"empty lists", `{"emails": [], "phones": [], "addresses": [], "links": [], "organizations": [], "customFields": {}}`, true},
		{"address with no keys", `{"addresses": [{}]}`, true},
		{"address without type", `{"addresses": [{"city": "Lyon"}]}`, true},
		{"organization with name only", `{"organizations": [{"name": "DINUM"}]}`, true},
		{"phone value not checked", `{"phones": [{"type": "Mobile", "value": ""}]}`, true},
		{"link value not checked", `{"links": [{"type": "Other", "value": "not a url"}]}`, true},
		{"email with non-ASCII", `{"emails": [{"type": "Other", "value": "élise@ville.fr"}]}`, true},
		{"email with upper-case domain", `{"emails": [{"type": "Work", "value": "a@EXAMPLE.FR"}]}`, true},
		{"email with zero-width space (not white space)", `{"emails": [{"type": "Work", "value": "a\u200bb@c.fr"}]}`, true},
		// net/mail refuses these, but SQL cannot tell: both sides accept them.
		{"email with consecutive dots", `{"emails": [{"type": "Work", "value": "a..b@c.fr"}]}`, true},
		{"email with comment-like text", `{"emails": [{"type": "Work", "value": "a(b)@c.fr"}]}`, true},

		{"unknown top-level key", `{"nicknames": []}`, false},
		{"emails not a list", `{"emails": {"type": "Work", "value": "a@b.fr"}}`, false},
		{"phones null", `{"phones": null}`, false},
		{"email item not an object", `{"emails": ["a@b.fr"]}`, false},
		{"phone item a number", `{"phones": [33123456789]}`, false},
		{"unknown item key", `{"emails": [{"type": "Work", "value": "a@b.fr", "primary": "yes"}]}`, false},
		{"address unknown key", `{"addresses": [{"street": "1 rue", "town": "Paris"}]}`, false},
		{"email missing value", `{"emails": [{"type": "Work"}]}`, false},
		{"email missing type", `{"emails": [{"value": "a@b.fr"}]}`, false},
		{"link missing value", `{"links": [{"type": "Blog"}]}`, false},
		{"wrong email type", `{"emails": [{"type": "Mobile", "value": "a@b.fr"}]}`, false},
		{"type in the wrong case", `{"phones": [{"type": "mobile", "value": "1"}]}`, false},
		{"wrong address type", `{"addresses": [{"type": "Office"}]}`, false},
		{"wrong link type", `{"links": [{"type": "Mastodon", "value": "x"}]}`, false},
		{"non-string value", `{"phones": [{"type": "Mobile", "value": 612345678}]}`, false},
		{"null value", `{"addresses": [{"city": null}]}`, false},
		{"boolean type", `{"emails": [{"type": true, "value": "a@b.fr"}]}`, false},
		{"invalid email value", `{"emails": [{"type": "Work", "value": "not an email"}]}`, false},
		{"email without local part", `{"emails": [{"type": "Work", "value": "@b.fr"}]}`, false},
		{"email without domain", `{"emails": [{"type": "Work", "value": "a@"}]}`, false},
		{"email with two @", `{"emails": [{"type": "Work", "value": "a@b@c.fr"}]}`, false},
		{"email empty", `{"emails": [{"type": "Work", "value": ""}]}`, false},
		// NormalizeEmail trims and net/mail accepts quoted spaces: the contact check must not.
		{"email with leading space", `{"emails": [{"type": "Work", "value": " a@b.fr"}]}`, false},
		{"email with quoted space", `{"emails": [{"type": "Work", "value": "\"a b\"@c.fr"}]}`, false},
		{"email with no-break space", `{"emails": [{"type": "Work", "value": "a\u00a0b@c.fr"}]}`, false},
		{"email with em space", `{"emails": [{"type": "Work", "value": "a\u2003b@c.fr"}]}`, false},
		{"email with line feed", `{"emails": [{"type": "Work", "value": "a@b.fr\n"}]}`, false},
		{"customFields with non-string", `{"customFields": {"age": 42}}`, false},
		{"customFields with nested object", `{"customFields": {"a": {"b": "c"}}}`, false},
		{"customFields a list", `{"customFields": ["a"]}`, false},
		{"customFields a string", `{"customFields": "a"}`, false},
		{"organization without name", `{"organizations": [{"department": "DSI"}]}`, false},
		{"organization with type", `{"organizations": [{"name": "DINUM", "type": "Work"}]}`, false},
		{"organization name not a string", `{"organizations": [{"name": ["DINUM"]}]}`, false},
		{"one bad item among good ones", `{"emails": [{"type": "Work", "value": "a@b.fr"}, {"type": "Work"}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var d map[string]any
			if err := json.Unmarshal([]byte(tt.doc), &d); err != nil {
				t.Fatalf("bad test document: %v", err)
			}
			goErr := store.ValidateContactData(d)
			var sqlValid bool
			if err := s.DB().QueryRowContext(t.Context(), "SELECT contact_data_valid(?::jsonb)", tt.doc).Scan(&sqlValid); err != nil {
				t.Fatalf("contact_data_valid: %v", err)
			}
			if goValid := goErr == nil; goValid != tt.valid || sqlValid != tt.valid {
				t.Errorf("ValidateContactData valid = %v (err: %v), contact_data_valid = %v, want %v", goValid, goErr, sqlValid, tt.valid)
			}
			if goErr != nil {
				if e, ok := goErr.(*store.Error); !ok || e.Kind != store.KindInvalid || e.Field != "data" {
					t.Errorf("ValidateContactData() = %#v, want a KindInvalid *store.Error on data", goErr)
				}
			}
		})
	}
}

// Documents that are not JSON objects cannot reach ValidateContactData (it takes a map), but
// can reach the column: the database refuses them, and never with an error other than false.
func TestContactDataNotAnObject(t *testing.T) {
	s := storetest.Open(t)
	for _, doc := range []string{`[]`, `[{"emails": []}]`, `"emails"`, `42`, `null`, `true`} {
		var valid bool
		if err := s.DB().QueryRowContext(t.Context(), "SELECT contact_data_valid(?::jsonb)", doc).Scan(&valid); err != nil {
			t.Fatalf("contact_data_valid(%s): %v", doc, err)
		}
		if valid {
			t.Errorf("contact_data_valid(%s) = true, want false", doc)
		}
	}
}

// jsonb cannot hold U+0000, so PostgreSQL would fail the whole statement with an error that
// fromDB cannot name: ValidateContactData refuses it first.
func TestContactDataNUL(t *testing.T) {
	for _, d := range []map[string]any{
		{"customFields": map[string]any{"a": "x\x00y"}},
		{"customFields": map[string]any{"a\x00": "x"}},
		{"phones": []any{map[string]any{"type": "Mobile", "value": "\x00"}}},
	} {
		if err := store.ValidateContactData(d); store.KindOf(err) != store.KindInvalid {
			t.Errorf("ValidateContactData(%q) = %v, want KindInvalid", d, err)
		}
	}
}
