package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// newSIRETOrganization logs a new person in with a new SIRET: the login creates the
// organization, named by the SIRET, and queues its lookup.
func newSIRETOrganization(t *testing.T, s *store.Store) (uuid.UUID, string) {
	t.Helper()
	reg, tok := siret(), storetest.Unique()
	u, err := s.ProvisionLogin(t.Context(), store.Claims{EmailVerified: true, Issuer: "https://idp-" + tok + ".test",
		Subject: "s-" + tok, Email: "p@" + tok + ".test", RegistrationID: reg}, store.LoginOptions{CreateUser: true, RegistrationIDPattern: store.SIRETPattern})
	if err != nil {
		t.Fatal(err)
	}
	return *u.OrganizationID, reg
}

// organization reads an organization's name and metadata.
func organization(t *testing.T, s *store.Store, id uuid.UUID) (string, map[string]any) {
	t.Helper()
	var o store.Organization
	if err := s.DB().NewSelect().Model(&o).Where("id = ?", id).Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	return o.Name, o.Metadata
}

func lookupQueued(t *testing.T, s *store.Store, id uuid.UUID) bool {
	t.Helper()
	var ok bool
	if err := s.DB().QueryRowContext(t.Context(), "SELECT EXISTS (SELECT 1 FROM organization_registry_lookups WHERE organization_id = ?)", id).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestOrganizationLookupQueue: a login that creates an organization from a SIRET queues its
// lookup; a claim hides it from other claims for the lease; a failure puts it back for later,
// or out of the queue.
func TestOrganizationLookupQueue(t *testing.T) {
	s := storetest.OpenAt(t, storetest.NewDatabase(t)) // claims are global: a database of its own
	ctx := t.Context()
	org, reg := newSIRETOrganization(t, s)
	if name, _ := organization(t, s, org); name != reg {
		t.Fatalf("the login named the organization %q, want its SIRET %q", name, reg)
	}
	// A domain-made organization is not queued: the registry knows SIRETs only.
	tok := storetest.Unique()
	u, err := s.ProvisionLogin(ctx, store.Claims{EmailVerified: true, Issuer: "https://idp-" + tok + ".test", Subject: "s",
		Email: "p@d-" + tok + ".test"}, store.LoginOptions{CreateUser: true})
	if err != nil {
		t.Fatal(err)
	}
	if lookupQueued(t, s, *u.OrganizationID) {
		t.Error("an organization made from a mail domain is queued")
	}

	got, err := s.ClaimOrganizationLookups(ctx, 10, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.OrganizationLookup{{OrganizationID: org, RegistrationID: reg, Attempts: 1}}, got); diff != "" {
		t.Fatalf("first claim (-want +got):\n%s", diff)
	}
	if again, err := s.ClaimOrganizationLookups(ctx, 10, time.Hour); err != nil || len(again) != 0 {
		t.Fatalf("claim during the lease = %v, %v; want nothing", again, err)
	}
	// Back in the queue, due now (as when a lease runs out).
	if err := s.OrganizationLookupFailed(ctx, org, time.Microsecond); err != nil {
		t.Fatal(err)
	}
	storetest.MustExec(t, s.DB(), "UPDATE organization_registry_lookups SET due_at = now() - interval '1 second' WHERE organization_id = ?", org)
	if got, err := s.ClaimOrganizationLookups(ctx, 10, time.Hour); err != nil || len(got) != 1 || got[0].Attempts != 2 {
		t.Fatalf("claim after a failure = %+v, %v; want the second attempt", got, err)
	}
	if err := s.OrganizationLookupFailed(ctx, org, 0); err != nil {
		t.Fatal(err)
	}
	if lookupQueued(t, s, org) {
		t.Error("a lookup given up is still queued")
	}
}

// TestClaimDropsRenamedOrganizations: an organization renamed while queued leaves the queue
// without being looked up.
func TestClaimDropsRenamedOrganizations(t *testing.T) {
	s := storetest.OpenAt(t, storetest.NewDatabase(t))
	org, _ := newSIRETOrganization(t, s)
	storetest.MustExec(t, s.DB(), "UPDATE organizations SET name = 'Named by staff' WHERE id = ?", org)
	got, err := s.ClaimOrganizationLookups(t.Context(), 10, time.Hour)
	if err != nil || len(got) != 0 {
		t.Fatalf("ClaimOrganizationLookups() = %+v, %v; want nothing to look up", got, err)
	}
	if lookupQueued(t, s, org) {
		t.Error("the renamed organization is still queued")
	}
}

func TestNameOrganizationFromRegistry(t *testing.T) {
	s := storetest.Open(t)
	ctx := t.Context()
	t.Run("named by its SIRET", func(t *testing.T) {
		t.Parallel()
		org, reg := newSIRETOrganization(t, s)
		storetest.MustExec(t, s.DB(), `UPDATE organizations SET metadata = '{"kept": 1, "is_commune": true}' WHERE id = ?`, org)
		renamed, err := s.NameOrganizationFromRegistry(ctx, org, reg, "  Mairie De L'Ile  ", map[string]any{"is_public_service": true, "is_commune": false})
		if err != nil || !renamed {
			t.Fatalf("NameOrganizationFromRegistry() = %v, %v; want renamed", renamed, err)
		}
		name, md := organization(t, s, org)
		if name != "Mairie De L'Ile" {
			t.Errorf("name = %q, want the registry's, trimmed", name)
		}
		if diff := cmp.Diff(map[string]any{"kept": float64(1), "is_public_service": true, "is_commune": false}, md); diff != "" {
			t.Errorf("metadata: the registry's keys merged into the organization's (-want +got):\n%s", diff)
		}
		if lookupQueued(t, s, org) {
			t.Error("the named organization is still queued")
		}
	})
	t.Run("already renamed", func(t *testing.T) {
		t.Parallel()
		org, reg := newSIRETOrganization(t, s)
		storetest.MustExec(t, s.DB(), "UPDATE organizations SET name = 'Chosen by its administrators' WHERE id = ?", org)
		renamed, err := s.NameOrganizationFromRegistry(ctx, org, reg, "Registry Name", map[string]any{"is_commune": true})
		if err != nil || renamed {
			t.Fatalf("NameOrganizationFromRegistry() = %v, %v; want not renamed", renamed, err)
		}
		name, md := organization(t, s, org)
		if name != "Chosen by its administrators" || len(md) != 0 {
			t.Errorf("organization = %q %v, want its own name and metadata untouched", name, md)
		}
		if lookupQueued(t, s, org) {
			t.Error("the organization is still queued")
		}
	})
	t.Run("renamed to another of its registration ids", func(t *testing.T) {
		t.Parallel()
		org, reg := newSIRETOrganization(t, s)
		other := siret()
		storetest.MustExec(t, s.DB(), "INSERT INTO organization_registration_ids (organization_id, registration_id) VALUES (?, ?)", org, other)
		storetest.MustExec(t, s.DB(), "UPDATE organizations SET name = ? WHERE id = ?", other, org)
		if renamed, err := s.NameOrganizationFromRegistry(ctx, org, reg, "Registry Name", nil); err != nil || renamed {
			t.Fatalf("NameOrganizationFromRegistry() = %v, %v; want not renamed: the name is no longer this SIRET", renamed, err)
		}
	})
	t.Run("a long name is cut", func(t *testing.T) {
		t.Parallel()
		org, reg := newSIRETOrganization(t, s)
		long := "Commune de " + strings.Repeat("Tres-Longue-", 20)
		if renamed, err := s.NameOrganizationFromRegistry(ctx, org, reg, long, nil); err != nil || !renamed {
			t.Fatalf("NameOrganizationFromRegistry() = %v, %v", renamed, err)
		}
		if name, _ := organization(t, s, org); len([]rune(name)) != 100 {
			t.Errorf("name has %d characters, want 100", len([]rune(name)))
		}
	})
	t.Run("a blank name is refused", func(t *testing.T) {
		t.Parallel()
		org, reg := newSIRETOrganization(t, s)
		if _, err := s.NameOrganizationFromRegistry(ctx, org, reg, "  ", nil); store.KindOf(err) != store.KindInvalid {
			t.Fatalf("NameOrganizationFromRegistry(blank) = %v, want KindInvalid", err)
		}
		if name, _ := organization(t, s, org); name != reg {
			t.Errorf("name = %q, want the SIRET kept", name)
		}
	})
}

// TestOrganizationsNamedByRegistrationID lists what the backfill looks up, page by page.
func TestOrganizationsNamedByRegistrationID(t *testing.T) {
	s := storetest.OpenAt(t, storetest.NewDatabase(t))
	want := map[uuid.UUID]string{}
	for range 3 {
		org, reg := newSIRETOrganization(t, s)
		want[org] = reg
	}
	renamed, _ := newSIRETOrganization(t, s)
	storetest.MustExec(t, s.DB(), "UPDATE organizations SET name = 'Renamed' WHERE id = ?", renamed)
	storetest.Organization(t, s) // named after a domain
	got := map[uuid.UUID]string{}
	var after uuid.UUID
	for {
		page, err := s.OrganizationsNamedByRegistrationID(t.Context(), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, o := range page {
			got[o.OrganizationID] = o.RegistrationID
		}
		after = page[len(page)-1].OrganizationID
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OrganizationsNamedByRegistrationID (-want +got):\n%s", diff)
	}
}
