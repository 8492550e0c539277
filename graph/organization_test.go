package graph_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// orgWorld is an organization with an administrator and a plain member, identified by two
// registration ids and two domains.
type orgWorld struct {
	org, admin, member uuid.UUID
	name               string
	registrationIDs    []string // sorted
	domains            []string // sorted
}

func newOrgWorld(tb testing.TB, s *store.Store) orgWorld {
	tb.Helper()
	ctx := context.Background()
	w := orgWorld{org: storetest.Organization(tb, s)}
	tok := storetest.Unique()
	w.registrationIDs = []string{"1" + tok, "2" + tok}
	for _, r := range w.registrationIDs {
		storetest.MustExec(tb, s.DB(), "INSERT INTO organization_registration_ids (organization_id, registration_id) VALUES (?, ?)", w.org, r)
	}
	storetest.MustExec(tb, s.DB(), "INSERT INTO organization_domains (organization_id, domain) VALUES (?, ?)", w.org, "aa-"+tok+".test")
	if err := s.DB().QueryRowContext(ctx, "SELECT name FROM organizations WHERE id = ?", w.org).Scan(&w.name); err != nil {
		tb.Fatal(err)
	}
	if err := s.DB().NewSelect().TableExpr("organization_domains").Column("domain").Where("organization_id = ?", w.org).
		OrderExpr("domain").Scan(ctx, &w.domains); err != nil {
		tb.Fatal(err)
	}
	w.admin = storetest.User(tb, s, w.org).ID
	w.member = storetest.User(tb, s, w.org).ID
	makeOrgAdmin(tb, s, w.org, w.admin)
	return w
}

// makeOrgAdmin makes user an administrator of org (organization_accesses).
func makeOrgAdmin(tb testing.TB, s *store.Store, org, user uuid.UUID) {
	tb.Helper()
	storetest.MustExec(tb, s.DB(), "INSERT INTO organization_accesses (organization_id, user_id) VALUES (?, ?)", org, user)
}

type organizationNode struct {
	ID              uuid.UUID
	Name            string
	RegistrationIDs []string `json:"registrationIds"`
	Domains         []string
	Abilities       struct{ Get, Update, Delete bool }
}

const organizationQuery = `query($id: ID!) { organization(id: $id) { id name registrationIds domains abilities { get update delete } } }`

func TestOrganization(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	w, other := newOrgWorld(t, s), newOrgWorld(t, s)

	for _, tt := range []struct {
		name   string
		viewer uuid.UUID
		update bool
	}{
		{"member", w.member, false},
		{"administrator", w.admin, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out struct{ Organization organizationNode }
			a.mustDo(session(tt.viewer), organizationQuery, map[string]any{"id": w.org}, &out)
			want := organizationNode{ID: w.org, Name: w.name, RegistrationIDs: w.registrationIDs, Domains: w.domains,
				Abilities: struct{ Get, Update, Delete bool }{true, tt.update, false}}
			if diff := cmp.Diff(want, out.Organization); diff != "" {
				t.Errorf("organization (-want +got):\n%s", diff)
			}
			// The same organization, reached through the user.
			var me struct {
				Me struct{ Organization organizationNode }
			}
			a.mustDo(session(tt.viewer), `{ me { organization { id name registrationIds domains abilities { get update delete } } } }`, nil, &me)
			if diff := cmp.Diff(want, me.Me.Organization); diff != "" {
				t.Errorf("me.organization (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("another organization is not found", func(t *testing.T) {
		t.Parallel()
		outsider := storetest.User(t, s, uuid.Nil).ID
		// An administrator of another organization cannot reach it through the API either:
		// People limits organizations to the user's own.
		makeOrgAdmin(t, s, other.org, w.admin)
		for _, tc := range []struct {
			viewer, org uuid.UUID
		}{
			{w.member, other.org}, {w.admin, other.org}, {w.member, uuid.New()}, {outsider, w.org},
		} {
			assertCode(t, a.do(session(tc.viewer), organizationQuery, map[string]any{"id": tc.org}, nil), "NOT_FOUND", "")
		}
	})
}

const updateOrganizationQuery = `mutation($id: ID!, $name: String!) {
	updateOrganization(input: {id: $id, name: $name}) { organization { id name registrationIds domains abilities { get update delete } } }
}`

func TestUpdateOrganization(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)

	t.Run("by an administrator", func(t *testing.T) {
		t.Parallel()
		w := newOrgWorld(t, s)
		var out struct {
			UpdateOrganization struct{ Organization organizationNode }
		}
		a.mustDo(session(w.admin), updateOrganizationQuery, map[string]any{"id": w.org, "name": "  Mairie de Trifouillis "}, &out)
		want := organizationNode{ID: w.org, Name: "Mairie de Trifouillis", RegistrationIDs: w.registrationIDs, Domains: w.domains,
			Abilities: struct{ Get, Update, Delete bool }{true, true, false}}
		if diff := cmp.Diff(want, out.UpdateOrganization.Organization); diff != "" {
			t.Errorf("updated organization (-want +got):\n%s", diff)
		}
		var got struct{ Organization organizationNode }
		a.mustDo(session(w.member), organizationQuery, map[string]any{"id": w.org}, &got)
		if got.Organization.Name != "Mairie de Trifouillis" {
			t.Errorf("name read back = %q", got.Organization.Name)
		}
	})

	w, other := newOrgWorld(t, s), newOrgWorld(t, s)
	makeOrgAdmin(t, s, other.org, w.admin) // administrator elsewhere, member here: still NOT_FOUND there
	for _, tt := range []struct {
		name        string
		viewer, org uuid.UUID
		newName     string
		code, field string
	}{
		{"by a member", w.member, w.org, "Renamed", "FORBIDDEN", ""},
		{"another organization", w.member, other.org, "Renamed", "NOT_FOUND", ""},
		{"another organization the caller administers", w.admin, other.org, "Renamed", "NOT_FOUND", ""},
		{"an unknown organization", w.admin, uuid.New(), "Renamed", "NOT_FOUND", ""},
		{"blank name", w.admin, w.org, "   ", "BAD_USER_INPUT", "name"},
		{"name too long", w.admin, w.org, strings.Repeat("é", 101), "BAD_USER_INPUT", "name"},
		{"NUL in name", w.admin, w.org, "Mairie\x00", "BAD_USER_INPUT", "name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := a.do(session(tt.viewer), updateOrganizationQuery, map[string]any{"id": tt.org, "name": tt.newName}, nil)
			assertCode(t, r, tt.code, tt.field)
		})
	}
	t.Run("refused renames change nothing", func(t *testing.T) {
		t.Parallel()
		for _, o := range []orgWorld{w, other} {
			var got struct{ Organization organizationNode }
			a.mustDo(session(o.member), organizationQuery, map[string]any{"id": o.org}, &got)
			if got.Organization.Name != o.name {
				t.Errorf("organization %s name = %q, want %q", o.org, got.Organization.Name, o.name)
			}
		}
	})
}

// linkedServiceProvider creates a service provider named name (unique per call) and links it to
// orgs.
func linkedServiceProvider(tb testing.TB, s *store.Store, name string, orgs ...uuid.UUID) (uuid.UUID, string) {
	tb.Helper()
	var id uuid.UUID
	audience := "client-" + storetest.Unique()
	if err := s.DB().QueryRowContext(context.Background(),
		"INSERT INTO service_providers (name, audience_id) VALUES (?, ?) RETURNING id", name, audience).Scan(&id); err != nil {
		tb.Fatalf("create service provider: %v", err)
	}
	for _, org := range orgs {
		storetest.MustExec(tb, s.DB(), "INSERT INTO organization_service_providers (organization_id, service_provider_id) VALUES (?, ?)", org, id)
	}
	return id, audience
}

const serviceProvidersQuery = `query($search: String, $first: Int, $after: String) {
	serviceProviders(search: $search, first: $first, after: $after) {
		nodes { id name audienceId }
		pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
		totalCount
	}
}`

type serviceProviderNode struct {
	ID               uuid.UUID
	Name, AudienceID string
}

func TestServiceProviders(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org, otherOrg := storetest.Organization(t, s), storetest.Organization(t, s)
	viewer := storetest.User(t, s, org).ID
	tok := storetest.Unique()
	tchap, tchapAud := linkedServiceProvider(t, s, "Tchap "+tok, org, otherOrg)
	resana, _ := linkedServiceProvider(t, s, "Résana "+tok, org)
	linkedServiceProvider(t, s, "Grist "+tok, otherOrg)
	_, unlinkedAud := linkedServiceProvider(t, s, "Unlinked "+tok)

	list := func(t *testing.T, viewer uuid.UUID, vars map[string]any) []serviceProviderNode {
		t.Helper()
		var out struct {
			ServiceProviders struct {
				Nodes      []serviceProviderNode
				PageInfo   pageInfoNode
				TotalCount int
			}
		}
		a.mustDo(session(viewer), serviceProvidersQuery, vars, &out)
		if out.ServiceProviders.TotalCount < len(out.ServiceProviders.Nodes) {
			t.Errorf("totalCount = %d for %d nodes", out.ServiceProviders.TotalCount, len(out.ServiceProviders.Nodes))
		}
		return out.ServiceProviders.Nodes
	}
	spIDs := func(nodes []serviceProviderNode) []uuid.UUID {
		return idsOf(nodes, func(n serviceProviderNode) uuid.UUID { return n.ID })
	}

	for _, tt := range []struct {
		name string
		vars map[string]any
		want []uuid.UUID
	}{
		{"those of the viewer's organization, by name", nil, []uuid.UUID{resana, tchap}},
		{"search by name, accent-insensitive", map[string]any{"search": "RESANA " + tok}, []uuid.UUID{resana}},
		{"search by audience id", map[string]any{"search": tchapAud}, []uuid.UUID{tchap}},
		{"search never reaches another organization's", map[string]any{"search": "grist " + tok}, nil},
		{"search never reaches unlinked ones", map[string]any{"search": unlinkedAud}, nil},
		{"search with NUL", map[string]any{"search": "Tchap\x00 " + tok}, []uuid.UUID{tchap}},
		{"first page", map[string]any{"first": 1}, []uuid.UUID{resana}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, spIDs(list(t, viewer, tt.vars)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("service providers (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("fields", func(t *testing.T) {
		t.Parallel()
		got := list(t, viewer, map[string]any{"search": tchapAud})
		if diff := cmp.Diff([]serviceProviderNode{{tchap, "Tchap " + tok, tchapAud}}, got); diff != "" {
			t.Errorf("service providers (-want +got):\n%s", diff)
		}
	})

	t.Run("pagination", func(t *testing.T) {
		t.Parallel()
		var out struct {
			ServiceProviders struct {
				Nodes      []serviceProviderNode
				PageInfo   pageInfoNode
				TotalCount int
			}
		}
		a.mustDo(session(viewer), serviceProvidersQuery, map[string]any{"first": 1}, &out)
		pi := out.ServiceProviders.PageInfo
		if !pi.HasNextPage || out.ServiceProviders.TotalCount != 2 || pi.EndCursor == nil {
			t.Fatalf("first page info = %+v, totalCount %d", pi, out.ServiceProviders.TotalCount)
		}
		if got := spIDs(list(t, viewer, map[string]any{"first": 1, "after": *pi.EndCursor})); !slices.Equal(got, []uuid.UUID{tchap}) {
			t.Errorf("second page = %v, want [%s]", got, tchap)
		}
		assertCode(t, a.do(session(viewer), serviceProvidersQuery, map[string]any{"first": 101}, nil), "BAD_USER_INPUT", "first")
		assertCode(t, a.do(session(viewer), serviceProvidersQuery, map[string]any{"after": "x"}, nil), "BAD_USER_INPUT", "after")
	})

	t.Run("a user without organization sees none", func(t *testing.T) {
		t.Parallel()
		if got := list(t, storetest.User(t, s, uuid.Nil).ID, nil); len(got) != 0 {
			t.Errorf("service providers = %+v, want none", got)
		}
	})
}
