package store

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// contactItem describes one list of People's contact JSON Schema (contact_data.json).
type contactItem struct {
	keys, required, types []string
}

var contactSchema = map[string]contactItem{
	"emails":        {keys: []string{"type", "value"}, required: []string{"type", "value"}, types: []string{"Work", "Home", "Other"}},
	"phones":        {keys: []string{"type", "value"}, required: []string{"type", "value"}, types: []string{"Mobile", "Home", "Work", "Main", "Work Fax", "Home Fax", "Pager", "Other"}},
	"addresses":     {keys: []string{"type", "street", "city", "state", "zip", "country"}, types: []string{"Home", "Work", "Other"}},
	"links":         {keys: []string{"type", "value"}, required: []string{"type", "value"}, types: []string{"Profile", "Blog", "Website", "Twitter", "Facebook", "Instagram", "LinkedIn", "Other"}},
	"organizations": {keys: []string{"name", "department", "jobTitle"}, required: []string{"name"}},
}

// ValidateContactData checks a contact's data against People's contact JSON Schema, with the
// same rules as the database's contact_data_valid, but says what is wrong and where.
func ValidateContactData(d map[string]any) error {
	bad := func(format string, args ...any) error { return invalid("data", fmt.Sprintf(format, args...)) }
	for key, v := range d {
		if key == "customFields" {
			m, ok := v.(map[string]any)
			if !ok {
				return bad("customFields must be an object")
			}
			for k, fv := range m {
				if s, ok := fv.(string); !ok {
					return bad("customFields.%s must be a string", k)
				} else if !storableText(k) || !storableText(s) {
					return bad("customFields.%s cannot contain a NUL character", k)
				}
			}
			continue
		}
		schema, ok := contactSchema[key]
		if !ok {
			return bad("unknown key %q: allowed keys are emails, phones, addresses, links, customFields and organizations", key)
		}
		items, ok := v.([]any)
		if !ok {
			return bad("%s must be a list", key)
		}
		for i, it := range items {
			item, ok := it.(map[string]any)
			if !ok {
				return bad("%s[%d] must be an object", key, i)
			}
			for k, fv := range item {
				if !slices.Contains(schema.keys, k) {
					return bad("%s[%d]: unknown key %q", key, i, k)
				}
				if s, ok := fv.(string); !ok {
					return bad("%s[%d].%s must be a string", key, i, k)
				} else if !storableText(s) {
					return bad("%s[%d].%s cannot contain a NUL character", key, i, k)
				}
			}
			for _, k := range schema.required {
				if _, ok := item[k]; !ok {
					return bad("%s[%d].%s is required", key, i, k)
				}
			}
			if t, ok := item["type"].(string); ok && schema.types != nil && !slices.Contains(schema.types, t) {
				return bad("%s[%d].type must be one of %v", key, i, schema.types)
			}
			if key == "emails" && !emailLike(item["value"].(string)) {
				return bad("emails[%d].value is not a valid email address", i)
			}
		}
	}
	return nil
}

// emailLike is the database's email_like: one @ with something on each side and no white space.
// It is deliberately looser than NormalizeEmail (net/mail), which SQL cannot express: the two
// checks of a contact's data must agree, or a document stored through psql or the demo loader
// would be refused by the API at its next edit, and one the API accepts could still fail the
// constraint.
func emailLike(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-1 && strings.Count(s, "@") == 1 && !strings.ContainsFunc(s, unicode.IsSpace)
}
