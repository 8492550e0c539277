package peopleimport

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// cleanContactData brings the contacts whose data is outside the schema into it (cleanData's
// rules) and reports each as changed; a rule then skips those the database still refuses.
// The data is checked here, by validData, rather than by contact_data_valid: that SQL
// function costs about 0.2 ms a row, and the insert's CHECK runs it once anyway.
func (im *importer) cleanContactData(ctx context.Context) error {
	rows, err := im.dst.Query(ctx, "SELECT id::text, data::text FROM s_contact ORDER BY id")
	if err != nil {
		return err
	}
	var ids, datas []string
	for rows.Next() {
		var id, data string
		if err := rows.Scan(&id, &data); err != nil {
			return err
		}
		if validData([]byte(data)) {
			continue
		}
		clean, notes := cleanData([]byte(data))
		ids, datas = append(ids, id), append(datas, string(clean))
		im.rep.add("contacts", id, Changed, "data outside the contact schema: "+strings.Join(notes, "; "))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	_, err = im.dst.Exec(ctx, `UPDATE s_contact s SET data = c.data::jsonb, cleaned = true FROM unnest($1::uuid[], $2::text[]) AS c (id, data)
		WHERE s.id = c.id`, ids, datas)
	return err
}

// validData is the database's contact_data_valid (migrations/0001_init.up.sql), rule for rule:
// a contact it accepts passes the insert's CHECK.
func validData(raw []byte) bool {
	var d map[string]any
	if json.Unmarshal(raw, &d) != nil || d == nil {
		return false
	}
	for k, v := range d {
		switch k {
		case "customFields":
			c, ok := v.(map[string]any)
			if !ok {
				return false
			}
			for _, f := range c {
				if _, ok := f.(string); !ok {
					return false
				}
			}
		case "emails", "phones", "addresses", "links", "organizations":
			items, ok := v.([]any)
			if !ok {
				return false
			}
			for _, it := range items {
				m, ok := it.(map[string]any)
				if !ok {
					return false
				}
				for ik, iv := range m {
					if _, ok := iv.(string); !ok || !slices.Contains(itemKeys[k], ik) {
						return false
					}
				}
				switch k {
				case "emails", "phones", "links":
					if _, ok := m["value"]; !ok {
						return false
					}
					if _, ok := m["type"]; !ok {
						return false
					}
				case "organizations":
					if _, ok := m["name"]; !ok {
						return false
					}
				}
				if t, ok := m["type"]; ok && itemTypes[k] != nil && !slices.Contains(itemTypes[k], t.(string)) {
					return false
				}
				if k == "emails" && !emailLike(m["value"].(string)) {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// The contact schema's lists: their allowed keys and types (People's contact_data.json).
var (
	itemKeys = map[string][]string{
		"emails": {"type", "value"}, "phones": {"type", "value"}, "links": {"type", "value"},
		"addresses":     {"type", "street", "city", "state", "zip", "country"},
		"organizations": {"name", "department", "jobTitle"},
	}
	itemTypes = map[string][]string{
		"emails":    {"Work", "Home", "Other"},
		"phones":    {"Mobile", "Home", "Work", "Main", "Work Fax", "Home Fax", "Pager", "Other"},
		"addresses": {"Home", "Work", "Other"},
		"links":     {"Profile", "Blog", "Website", "Twitter", "Facebook", "Instagram", "LinkedIn", "Other"},
	}
)

// cleanData applies the import's rules for contact data outside the schema, and says what it
// did: data that is not an object becomes {}; an unknown top-level key with a string value
// moves into customFields (unless customFields has that key), any other unknown key goes;
// items that are not objects, or lack a string value (emails: an address), go; a type outside
// the list becomes Other; keys an item may not have, and values that are not strings, go
// (customFields' numbers and booleans become their JSON text).
func cleanData(raw []byte) ([]byte, []string) {
	var notes []string
	var d map[string]any
	if err := json.Unmarshal(raw, &d); err != nil || d == nil {
		return []byte("{}"), []string{fmt.Sprintf("%s is not a JSON object: emptied", abbreviate(string(raw)))}
	}
	out := map[string]any{}
	custom := map[string]any{}
	if c, ok := d["customFields"].(map[string]any); ok {
		for k, v := range c {
			switch v := v.(type) {
			case string:
				custom[k] = v
			case float64, bool:
				b, _ := json.Marshal(v)
				custom[k] = string(b)
				notes = append(notes, fmt.Sprintf("customFields.%s: %s stored as text", k, b))
			default:
				notes = append(notes, fmt.Sprintf("customFields.%s: not text, dropped", k))
			}
		}
	} else if _, present := d["customFields"]; present {
		notes = append(notes, "customFields is not an object: dropped")
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := d[k]
		switch {
		case k == "customFields":
		case itemKeys[k] != nil:
			items, ok := v.([]any)
			if !ok {
				notes = append(notes, k+" is not a list: dropped")
				continue
			}
			out[k] = cleanItems(k, items, &notes)
		default:
			if s, ok := v.(string); ok && custom[k] == nil {
				custom[k] = s
				notes = append(notes, fmt.Sprintf("key %q moved into customFields", k))
			} else {
				notes = append(notes, fmt.Sprintf("key %q dropped", k))
			}
		}
	}
	if len(custom) > 0 || d["customFields"] != nil {
		out["customFields"] = custom
	}
	clean, _ := json.Marshal(out)
	return clean, notes
}

func cleanItems(list string, items []any, notes *[]string) []any {
	kept := []any{}
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			*notes = append(*notes, fmt.Sprintf("%s[%d] is not an object: dropped", list, i))
			continue
		}
		c := map[string]any{}
		for k, v := range m {
			s, isString := v.(string)
			switch {
			case !slices.Contains(itemKeys[list], k):
				*notes = append(*notes, fmt.Sprintf("%s[%d].%s: not in the schema, dropped", list, i, k))
			case !isString:
				*notes = append(*notes, fmt.Sprintf("%s[%d].%s: not text, dropped", list, i, k))
			default:
				c[k] = s
			}
		}
		need := "value"
		switch list {
		case "addresses":
			need = ""
		case "organizations":
			need = "name"
		}
		if v, _ := c[need].(string); need != "" && (v == "" || list == "emails" && !emailLike(v)) {
			*notes = append(*notes, fmt.Sprintf("%s[%d]: no valid %s, dropped", list, i, need))
			continue
		}
		if types := itemTypes[list]; types != nil {
			if t, ok := c["type"].(string); (!ok && list != "addresses") || (ok && !slices.Contains(types, t)) {
				if ok {
					*notes = append(*notes, fmt.Sprintf("%s[%d].type %q: Other", list, i, t))
				} else {
					*notes = append(*notes, fmt.Sprintf("%s[%d].type missing: Other", list, i))
				}
				c["type"] = "Other"
			}
		}
		kept = append(kept, c)
	}
	return kept
}

// emailLike is the database's email_like: one @, something on each side, no white space.
func emailLike(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") && !strings.ContainsFunc(s, unicode.IsSpace)
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
