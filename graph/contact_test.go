package graph_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// nullID is nil for uuid.Nil, for nullable columns.
func nullID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// makeContact inserts a contact with plain SQL; uuid.Nil leaves owner, profile user or
// override empty, and data is a JSON object ("" for {}).
func makeContact(tb testing.TB, s *store.Store, owner, profileOf, override uuid.UUID, fullName, data string) uuid.UUID {
	tb.Helper()
	if data == "" {
		data = "{}"
	}
	var id uuid.UUID
	err := s.DB().QueryRowContext(context.Background(),
		"INSERT INTO contacts (owner_id, user_id, override_id, full_name, data) VALUES (?, ?, ?, ?, ?::jsonb) RETURNING id",
		nullID(owner), nullID(profileOf), nullID(override), fullName, data).Scan(&id)
	if err != nil {
		tb.Fatalf("create contact: %v", err)
	}
	return id
}

type contactNode struct {
	ID        uuid.UUID
	FullName  string
	ShortName *string
	Notes     string
	Data      map[string]any
	Owner     *struct{ ID uuid.UUID }
	Override  *struct {
		ID       uuid.UUID
		FullName string
	}
	ProfileOf *struct{ ID uuid.UUID }
	Abilities struct{ Get, Update, Delete bool }
}

const contactFields = `id fullName shortName notes data owner { id } override { id fullName } profileOf { id } abilities { get update delete }`

type contactsOut struct {
	Contacts struct {
		Nodes      []contactNode
		PageInfo   pageInfoNode
		TotalCount int
	}
}

func contactIDs(nodes []contactNode) []uuid.UUID {
	return idsOf(nodes, func(n contactNode) uuid.UUID { return n.ID })
}

// contactWorld is two organizations and the contacts of every kind the visibility rules
// distinguish. Every full name contains tok, so a search for tok lists only these contacts
// (public contacts of other tests are visible to everyone).
type contactWorld struct {
	tok                             string
	viewer, colleague, stranger     uuid.UUID // viewer and colleague share an organization
	public, public2                 uuid.UUID // public contacts; the viewer overrides public
	override                        uuid.UUID // the viewer's override of public
	viewerOwn, colleagueOwn         uuid.UUID
	viewerProfile, colleagueProfile uuid.UUID
	strangerProfile, strangerOwn    uuid.UUID
}

func newContactWorld(tb testing.TB, s *store.Store) contactWorld {
	tb.Helper()
	org, other := storetest.Organization(tb, s), storetest.Organization(tb, s)
	w := contactWorld{tok: storetest.Unique()}
	w.viewer = storetest.User(tb, s, org).ID
	w.colleague = storetest.User(tb, s, org).ID
	w.stranger = storetest.User(tb, s, other).ID
	w.public = makeContact(tb, s, uuid.Nil, uuid.Nil, uuid.Nil, "Aa Public "+w.tok, `{"emails": [{"type": "Work", "value": "public-`+w.tok+`@mairie.test"}]}`)
	w.public2 = makeContact(tb, s, uuid.Nil, uuid.Nil, uuid.Nil, "Ab Public Two "+w.tok, "")
	w.override = makeContact(tb, s, w.viewer, uuid.Nil, w.public, "Ac My Public "+w.tok, "")
	w.viewerOwn = makeContact(tb, s, w.viewer, uuid.Nil, uuid.Nil, "Ad Viewer's Friend "+w.tok, "")
	w.colleagueOwn = makeContact(tb, s, w.colleague, uuid.Nil, uuid.Nil, "Ae Colleague's Friend "+w.tok, "")
	w.viewerProfile = makeContact(tb, s, w.viewer, w.viewer, uuid.Nil, "Af Viewer "+w.tok, "")
	w.colleagueProfile = makeContact(tb, s, w.colleague, w.colleague, uuid.Nil, "Ag Colleague "+w.tok, "")
	w.strangerProfile = makeContact(tb, s, w.stranger, w.stranger, uuid.Nil, "Ah Stranger "+w.tok, "")
	w.strangerOwn = makeContact(tb, s, w.stranger, uuid.Nil, uuid.Nil, "Ai Stranger's Friend "+w.tok, "")
	return w
}

const contactsQuery = `query($search: String, $first: Int, $after: String) {
	contacts(search: $search, first: $first, after: $after) {
		nodes { ` + contactFields + ` }
		pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
		totalCount
	}
}`

func TestContactsVisibility(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	w := newContactWorld(t, s)
	list := func(t *testing.T, viewer uuid.UUID) []uuid.UUID {
		t.Helper()
		var out contactsOut
		a.mustDo(session(viewer), contactsQuery, map[string]any{"search": w.tok}, &out)
		if out.Contacts.TotalCount != len(out.Contacts.Nodes) {
			t.Errorf("totalCount = %d for %d nodes", out.Contacts.TotalCount, len(out.Contacts.Nodes))
		}
		return contactIDs(out.Contacts.Nodes)
	}
	tests := []struct {
		name   string
		viewer uuid.UUID
		want   []uuid.UUID // by full name
	}{
		// The viewer's override replaces the public contact, for the viewer only; the
		// colleague's private contact and the other organization's contacts stay hidden.
		{"viewer", w.viewer, []uuid.UUID{w.public2, w.override, w.viewerOwn, w.viewerProfile, w.colleagueProfile}},
		// The colleague still sees the public contact the viewer overrode, never the override.
		{"colleague", w.colleague, []uuid.UUID{w.public, w.public2, w.colleagueOwn, w.viewerProfile, w.colleagueProfile}},
		{"other organization", w.stranger, []uuid.UUID{w.public, w.public2, w.strangerProfile, w.strangerOwn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, list(t, tt.viewer)); diff != "" {
				t.Errorf("contacts (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("search by an email of an overridden public contact", func(t *testing.T) {
		t.Parallel()
		for viewer, want := range map[uuid.UUID][]uuid.UUID{w.colleague: {w.public}, w.viewer: nil} {
			var out contactsOut
			a.mustDo(session(viewer), contactsQuery, map[string]any{"search": "PUBLIC-" + w.tok + "@mairie"}, &out)
			if diff := cmp.Diff(want, contactIDs(out.Contacts.Nodes), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("contacts of %s (-want +got):\n%s", viewer, diff)
			}
		}
	})

	t.Run("a user without organization sees public and own contacts only", func(t *testing.T) {
		t.Parallel()
		loner := storetest.User(t, s, uuid.Nil).ID
		own := makeContact(t, s, loner, uuid.Nil, uuid.Nil, "Zz Loner's "+w.tok, "")
		if diff := cmp.Diff([]uuid.UUID{w.public, w.public2, own}, list(t, loner)); diff != "" {
			t.Errorf("contacts (-want +got):\n%s", diff)
		}
	})

	t.Run("contact by id", func(t *testing.T) {
		t.Parallel()
		for _, id := range []uuid.UUID{w.public, w.public2, w.override, w.viewerOwn, w.viewerProfile, w.colleagueProfile} {
			var out struct{ Contact contactNode }
			a.mustDo(session(w.viewer), `query($id: ID!) { contact(id: $id) { `+contactFields+` } }`, map[string]any{"id": id}, &out)
			if out.Contact.ID != id {
				t.Errorf("contact(%s) = %s", id, out.Contact.ID)
			}
		}
		for _, id := range []uuid.UUID{w.colleagueOwn, w.strangerProfile, w.strangerOwn, uuid.New()} {
			r := a.do(session(w.viewer), `query($id: ID!) { contact(id: $id) { id } }`, map[string]any{"id": id}, nil)
			assertCode(t, r, "NOT_FOUND", "")
		}
	})

	t.Run("nested fields and abilities", func(t *testing.T) {
		t.Parallel()
		var out contactsOut
		a.mustDo(session(w.viewer), contactsQuery, map[string]any{"search": w.tok}, &out)
		byID := map[uuid.UUID]contactNode{}
		for _, n := range out.Contacts.Nodes {
			byID[n.ID] = n
		}
		type view struct {
			Owner, Override, ProfileOf uuid.UUID
			OverrideName               string
			Get, Update, Delete        bool
		}
		flatten := func(n contactNode) view {
			v := view{Get: n.Abilities.Get, Update: n.Abilities.Update, Delete: n.Abilities.Delete}
			if n.Owner != nil {
				v.Owner = n.Owner.ID
			}
			if n.Override != nil {
				v.Override, v.OverrideName = n.Override.ID, n.Override.FullName
			}
			if n.ProfileOf != nil {
				v.ProfileOf = n.ProfileOf.ID
			}
			return v
		}
		want := map[uuid.UUID]view{
			w.public2:          {Get: true},
			w.override:         {Owner: w.viewer, Override: w.public, OverrideName: "Aa Public " + w.tok, Get: true, Update: true, Delete: true},
			w.viewerOwn:        {Owner: w.viewer, Get: true, Update: true, Delete: true},
			w.viewerProfile:    {Owner: w.viewer, ProfileOf: w.viewer, Get: true, Update: true},
			w.colleagueProfile: {Owner: w.colleague, ProfileOf: w.colleague, Get: true},
		}
		got := map[uuid.UUID]view{}
		for id, n := range byID {
			got[id] = flatten(n)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("contacts (-want +got):\n%s", diff)
		}
	})

	t.Run("pagination", func(t *testing.T) {
		t.Parallel()
		var first, second contactsOut
		a.mustDo(session(w.viewer), contactsQuery, map[string]any{"search": w.tok, "first": 3}, &first)
		pi := first.Contacts.PageInfo
		if len(first.Contacts.Nodes) != 3 || !pi.HasNextPage || pi.HasPreviousPage || first.Contacts.TotalCount != 5 || pi.EndCursor == nil {
			t.Fatalf("first page = %d nodes, %+v, totalCount %d", len(first.Contacts.Nodes), pi, first.Contacts.TotalCount)
		}
		a.mustDo(session(w.viewer), contactsQuery, map[string]any{"search": w.tok, "first": 3, "after": *pi.EndCursor}, &second)
		got := append(contactIDs(first.Contacts.Nodes), contactIDs(second.Contacts.Nodes)...)
		if diff := cmp.Diff([]uuid.UUID{w.public2, w.override, w.viewerOwn, w.viewerProfile, w.colleagueProfile}, got); diff != "" {
			t.Errorf("pages (-want +got):\n%s", diff)
		}
		if pi := second.Contacts.PageInfo; pi.HasNextPage || !pi.HasPreviousPage {
			t.Errorf("second page info = %+v", pi)
		}
		for _, vars := range []map[string]any{{"first": 0}, {"first": 101}, {"after": "%%%"}} {
			field := "first"
			if _, ok := vars["after"]; ok {
				field = "after"
			}
			assertCode(t, a.do(session(w.viewer), contactsQuery, vars, nil), "BAD_USER_INPUT", field)
		}
	})
}

func TestContactsSearch(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org := storetest.Organization(t, s)
	viewer := storetest.User(t, s, org).ID
	tok := storetest.Unique()
	zoe := makeContact(t, s, viewer, uuid.Nil, uuid.Nil, "Zoé Château "+tok,
		`{"emails": [{"type": "Work", "value": "z.chateau-`+tok+`@mairie.test"}, {"type": "Home", "value": "zozo-`+tok+`@maison.test"}]}`)
	var short uuid.UUID
	if err := s.DB().QueryRowContext(t.Context(), "INSERT INTO contacts (owner_id, full_name, short_name) VALUES (?, ?, ?) RETURNING id",
		viewer, "Someone Else", "Pépé"+tok).Scan(&short); err != nil {
		t.Fatal(err)
	}
	makeContact(t, s, storetest.User(t, s, org).ID, uuid.Nil, uuid.Nil, "Zoé Hidden "+tok,
		`{"emails": [{"type": "Work", "value": "zozo-`+tok+`@hidden.test"}]}`)
	for _, tt := range []struct {
		search string
		want   []uuid.UUID
	}{
		{"zoe chateau " + tok, []uuid.UUID{zoe}},
		{"z.chateau-" + tok, []uuid.UUID{zoe}},        // an email in data
		{"ZOZO-" + tok + "@MAISON", []uuid.UUID{zoe}}, // the second email, case-insensitive
		{"zozo-" + tok, []uuid.UUID{zoe}},             // another user's private contact stays hidden
		{"pepe" + tok, []uuid.UUID{short}},            // short name, accent-insensitive
		{"%" + tok, nil},                              // LIKE wildcards are literal
	} {
		t.Run(tt.search, func(t *testing.T) {
			t.Parallel()
			var out contactsOut
			a.mustDo(session(viewer), contactsQuery, map[string]any{"search": tt.search}, &out)
			if diff := cmp.Diff(tt.want, contactIDs(out.Contacts.Nodes), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("contacts (-want +got):\n%s", diff)
			}
		})
	}
}

const createContactQuery = `mutation($input: CreateContactInput!) { createContact(input: $input) { contact { ` + contactFields + ` } } }`

func TestCreateContact(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org := storetest.Organization(t, s)
	w := newContactWorld(t, s)

	t.Run("happy path", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, org).ID
		data := map[string]any{
			"emails":        []any{map[string]any{"type": "Work", "value": "jeanne@mairie.test"}},
			"phones":        []any{map[string]any{"type": "Work Fax", "value": "+33 1 23 45 67 89"}},
			"addresses":     []any{map[string]any{"type": "Work", "city": "Lyon"}},
			"links":         []any{map[string]any{"type": "LinkedIn", "value": "https://example.test/jeanne"}},
			"customFields":  map[string]any{"badge": "42"},
			"organizations": []any{map[string]any{"name": "Mairie", "jobTitle": "Maire"}},
		}
		var out struct{ CreateContact struct{ Contact contactNode } }
		a.mustDo(session(u), createContactQuery, map[string]any{"input": map[string]any{
			"fullName": "  Jeanne Dupont ", "shortName": "Jeanne", "notes": "met in Lyon", "data": data}}, &out)
		c := out.CreateContact.Contact
		short := "Jeanne"
		want := contactNode{ID: c.ID, FullName: "Jeanne Dupont", ShortName: &short, Notes: "met in Lyon", Data: data,
			Owner: &struct{ ID uuid.UUID }{u}, Abilities: struct{ Get, Update, Delete bool }{true, true, true}}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("created contact (-want +got):\n%s", diff)
		}
		var got struct{ Contact contactNode }
		a.mustDo(session(u), `query($id: ID!) { contact(id: $id) { `+contactFields+` } }`, map[string]any{"id": c.ID}, &got)
		if diff := cmp.Diff(want, got.Contact); diff != "" {
			t.Errorf("contact read back (-want +got):\n%s", diff)
		}
	})

	t.Run("without data", func(t *testing.T) {
		t.Parallel()
		var out struct{ CreateContact struct{ Contact contactNode } }
		a.mustDo(session(w.colleague), createContactQuery, map[string]any{"input": map[string]any{"fullName": "Bare"}}, &out)
		if c := out.CreateContact.Contact; c.ShortName != nil || c.Notes != "" || len(c.Data) != 0 {
			t.Errorf("created contact = %+v", c)
		}
	})

	t.Run("override of a public contact, once", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, org).ID
		input := map[string]any{"input": map[string]any{"fullName": "Mine " + w.tok, "overrideId": w.public2}}
		var out struct{ CreateContact struct{ Contact contactNode } }
		a.mustDo(session(u), createContactQuery, input, &out)
		if o := out.CreateContact.Contact.Override; o == nil || o.ID != w.public2 {
			t.Errorf("override = %+v, want %s", o, w.public2)
		}
		assertCode(t, a.do(session(u), createContactQuery, input, nil), "CONFLICT", "overrideId")
		// Another user may still override it for themselves.
		a.mustDo(session(storetest.User(t, s, org).ID), createContactQuery, input, nil)
	})

	for _, tt := range []struct {
		name  string
		input map[string]any
		code  string
		field string
	}{
		{"override of another user's private contact", map[string]any{"fullName": "x", "overrideId": w.colleagueOwn}, "BAD_USER_INPUT", "overrideId"},
		{"override of an invisible private contact", map[string]any{"fullName": "x", "overrideId": w.strangerOwn}, "BAD_USER_INPUT", "overrideId"},
		{"override of a profile contact", map[string]any{"fullName": "x", "overrideId": w.colleagueProfile}, "BAD_USER_INPUT", "overrideId"},
		{"override of an override", map[string]any{"fullName": "x", "overrideId": w.override}, "BAD_USER_INPUT", "overrideId"},
		{"override of an unknown contact", map[string]any{"fullName": "x", "overrideId": uuid.New()}, "BAD_USER_INPUT", "overrideId"},
		{"malformed override id", map[string]any{"fullName": "x", "overrideId": "nope"}, "BAD_USER_INPUT", ""},
		{"blank full name", map[string]any{"fullName": "   "}, "BAD_USER_INPUT", "fullName"},
		{"empty full name", map[string]any{"fullName": ""}, "BAD_USER_INPUT", "fullName"},
		{"full name too long", map[string]any{"fullName": strings.Repeat("é", 151)}, "BAD_USER_INPUT", "fullName"},
		{"short name too long", map[string]any{"fullName": "x", "shortName": "0123456789012345678901234567890"}, "BAD_USER_INPUT", "shortName"},
		{"unknown data key", map[string]any{"fullName": "x", "data": map[string]any{"birthday": "today"}}, "BAD_USER_INPUT", "data"},
		{"unknown email type", map[string]any{"fullName": "x", "data": map[string]any{"emails": []any{map[string]any{"type": "Pigeon", "value": "a@b.test"}}}}, "BAD_USER_INPUT", "data"},
		{"email without value", map[string]any{"fullName": "x", "data": map[string]any{"emails": []any{map[string]any{"type": "Work"}}}}, "BAD_USER_INPUT", "data"},
		{"email that is not one", map[string]any{"fullName": "x", "data": map[string]any{"emails": []any{map[string]any{"type": "Work", "value": "nope"}}}}, "BAD_USER_INPUT", "data"},
		{"emails not a list", map[string]any{"fullName": "x", "data": map[string]any{"emails": "a@b.test"}}, "BAD_USER_INPUT", "data"},
		{"phone value not a string", map[string]any{"fullName": "x", "data": map[string]any{"phones": []any{map[string]any{"type": "Work", "value": 42}}}}, "BAD_USER_INPUT", "data"},
		{"unknown address key", map[string]any{"fullName": "x", "data": map[string]any{"addresses": []any{map[string]any{"planet": "Mars"}}}}, "BAD_USER_INPUT", "data"},
		{"organization without name", map[string]any{"fullName": "x", "data": map[string]any{"organizations": []any{map[string]any{"department": "IT"}}}}, "BAD_USER_INPUT", "data"},
		{"custom field not a string", map[string]any{"fullName": "x", "data": map[string]any{"customFields": map[string]any{"n": 1}}}, "BAD_USER_INPUT", "data"},
		{"NUL in data", map[string]any{"fullName": "x", "data": map[string]any{"customFields": map[string]any{"n": "a\x00b"}}}, "BAD_USER_INPUT", "data"},
		{"NUL in full name", map[string]any{"fullName": "a\x00b"}, "BAD_USER_INPUT", "fullName"},
		{"NUL in notes", map[string]any{"fullName": "x", "notes": "a\x00b"}, "BAD_USER_INPUT", "notes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertCode(t, a.do(session(w.viewer), createContactQuery, map[string]any{"input": tt.input}, nil), tt.code, tt.field)
		})
	}

	t.Run("refused when the features are off", func(t *testing.T) {
		t.Parallel()
		for _, f := range []graph.Features{
			{ContactsDisplay: true, ContactsCreate: false, TeamsDisplay: true, TeamsCreate: true},
			{ContactsDisplay: false, ContactsCreate: true, TeamsDisplay: true, TeamsCreate: true},
		} {
			off := newAPI(t, s, graph.Settings{Features: f})
			assertCode(t, off.do(session(w.viewer), createContactQuery, map[string]any{"input": map[string]any{"fullName": "x"}}, nil), "FORBIDDEN", "")
		}
	})
}

const updateContactQuery = `mutation($input: UpdateContactInput!) { updateContact(input: $input) { contact { ` + contactFields + ` } } }`

func TestUpdateContact(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	w := newContactWorld(t, s)

	t.Run("by the owner", func(t *testing.T) {
		t.Parallel()
		id := makeContact(t, s, w.viewer, uuid.Nil, uuid.Nil, "Before", `{"phones": [{"type": "Home", "value": "1"}]}`)
		data := map[string]any{"emails": []any{map[string]any{"type": "Home", "value": "after@home.test"}}}
		var out struct{ UpdateContact struct{ Contact contactNode } }
		a.mustDo(session(w.viewer), updateContactQuery, map[string]any{"input": map[string]any{
			"id": id, "fullName": " After ", "shortName": "Aft", "notes": "n", "data": data}}, &out)
		short := "Aft"
		want := contactNode{ID: id, FullName: "After", ShortName: &short, Notes: "n", Data: data,
			Owner: &struct{ ID uuid.UUID }{w.viewer}, Abilities: struct{ Get, Update, Delete bool }{true, true, true}}
		if diff := cmp.Diff(want, out.UpdateContact.Contact); diff != "" {
			t.Errorf("updated contact (-want +got):\n%s", diff)
		}
		// Fields left out are unchanged; an empty short name clears it.
		a.mustDo(session(w.viewer), updateContactQuery, map[string]any{"input": map[string]any{"id": id, "shortName": ""}}, &out)
		want.ShortName = nil
		if diff := cmp.Diff(want, out.UpdateContact.Contact); diff != "" {
			t.Errorf("contact after clearing the short name (-want +got):\n%s", diff)
		}
	})

	t.Run("own profile and override", func(t *testing.T) {
		t.Parallel()
		for _, id := range []uuid.UUID{w.viewerProfile, w.override} {
			var out struct{ UpdateContact struct{ Contact contactNode } }
			a.mustDo(session(w.viewer), updateContactQuery, map[string]any{"input": map[string]any{"id": id, "notes": "edited"}}, &out)
			if out.UpdateContact.Contact.Notes != "edited" {
				t.Errorf("contact %s notes = %q", id, out.UpdateContact.Contact.Notes)
			}
		}
	})

	for _, tt := range []struct {
		name  string
		id    uuid.UUID
		input map[string]any
		code  string
		field string
	}{
		{"a public contact", w.public2, nil, "FORBIDDEN", ""},
		{"a public contact the viewer overrides", w.public, nil, "FORBIDDEN", ""},
		{"a colleague's profile contact", w.colleagueProfile, nil, "FORBIDDEN", ""},
		{"a colleague's private contact", w.colleagueOwn, nil, "NOT_FOUND", ""},
		{"another organization's profile contact", w.strangerProfile, nil, "NOT_FOUND", ""},
		{"an unknown contact", uuid.New(), nil, "NOT_FOUND", ""},
		{"bad data", w.viewerOwn, map[string]any{"data": map[string]any{"emails": []any{map[string]any{"type": "Work"}}}}, "BAD_USER_INPUT", "data"},
		{"blank full name", w.viewerOwn, map[string]any{"fullName": " "}, "BAD_USER_INPUT", "fullName"},
		{"NUL in short name", w.viewerOwn, map[string]any{"shortName": "\x00"}, "BAD_USER_INPUT", "shortName"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			input := map[string]any{"id": tt.id, "fullName": "Hijacked"}
			for k, v := range tt.input {
				input[k] = v
			}
			assertCode(t, a.do(session(w.viewer), updateContactQuery, map[string]any{"input": input}, nil), tt.code, tt.field)
		})
	}

	t.Run("refused changes leave the contact unchanged", func(t *testing.T) {
		t.Parallel()
		for _, id := range []uuid.UUID{w.public2, w.colleagueProfile} {
			var out struct{ Contact contactNode }
			a.mustDo(session(w.colleague), `query($id: ID!) { contact(id: $id) { fullName } }`, map[string]any{"id": id}, &out)
			if out.Contact.FullName == "Hijacked" {
				t.Errorf("contact %s was changed", id)
			}
		}
	})
}

const deleteContactQuery = `mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId } }`

func TestDeleteContact(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	w := newContactWorld(t, s)

	t.Run("by the owner", func(t *testing.T) {
		t.Parallel()
		for _, id := range []uuid.UUID{makeContact(t, s, w.viewer, uuid.Nil, uuid.Nil, "Gone", ""), w.override} {
			var out struct{ DeleteContact struct{ DeletedID uuid.UUID } }
			a.mustDo(session(w.viewer), deleteContactQuery, map[string]any{"id": id}, &out)
			if out.DeleteContact.DeletedID != id {
				t.Errorf("deletedId = %s, want %s", out.DeleteContact.DeletedID, id)
			}
			assertCode(t, a.do(session(w.viewer), `query($id: ID!) { contact(id: $id) { id } }`, map[string]any{"id": id}, nil), "NOT_FOUND", "")
		}
		// With its override gone, the public contact is listed again for the viewer.
		var out contactsOut
		a.mustDo(session(w.viewer), contactsQuery, map[string]any{"search": "Aa Public " + w.tok}, &out)
		if diff := cmp.Diff([]uuid.UUID{w.public}, contactIDs(out.Contacts.Nodes)); diff != "" {
			t.Errorf("contacts (-want +got):\n%s", diff)
		}
	})

	for _, tt := range []struct {
		name string
		id   uuid.UUID
		code string
	}{
		{"own profile contact", w.viewerProfile, "FORBIDDEN"},
		{"a public contact", w.public2, "FORBIDDEN"},
		{"a colleague's profile contact", w.colleagueProfile, "FORBIDDEN"},
		{"a colleague's private contact", w.colleagueOwn, "NOT_FOUND"},
		{"another organization's profile contact", w.strangerProfile, "NOT_FOUND"},
		{"an unknown contact", uuid.New(), "NOT_FOUND"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertCode(t, a.do(session(w.viewer), deleteContactQuery, map[string]any{"id": tt.id}, nil), tt.code, "")
			if tt.code == "FORBIDDEN" { // still there
				a.mustDo(session(w.viewer), `query($id: ID!) { contact(id: $id) { id } }`, map[string]any{"id": tt.id}, nil)
			}
		})
	}
}
