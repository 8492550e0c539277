package store_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func TestDevUsers(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	siret := "reg-" + storetest.Unique() // the database checks no format
	storetest.MustExec(t, s.DB(), "INSERT INTO organization_registration_ids (organization_id, registration_id, created_at) VALUES (?, ?, now() - interval '1 day')", org, siret)
	storetest.MustExec(t, s.DB(), "INSERT INTO organization_registration_ids (organization_id, registration_id) VALUES (?, ?)", org, siret+"b")
	var orgName string
	if err := s.DB().NewRaw("SELECT name FROM organizations WHERE id = ?", org).Scan(t.Context(), &orgName); err != nil {
		t.Fatal(err)
	}

	tok := storetest.Unique()
	member := storetest.User(t, s, org, storetest.WithName("Jean-François Le Goff"), storetest.WithEmail("Jf."+tok+"@example.test"))
	loner := storetest.User(t, s, uuid.Nil, storetest.WithName(""))
	inactive := storetest.User(t, s, org, storetest.Inactive())
	device := storetest.User(t, s, org)
	storetest.MustExec(t, s.DB(), "UPDATE users SET is_device = true WHERE id = ?", device.ID)

	dev := func(u store.User, org, siret string) store.DevUser {
		return store.DevUser{ID: u.ID, Sub: u.Sub, Email: u.Email, Name: u.Name, Organization: org, RegistrationID: siret}
	}
	tests := []struct {
		name string
		f    store.DevUserFilter
		want []store.DevUser
	}{
		{"by email, case-insensitive", store.DevUserFilter{Email: strings.ToUpper(member.Email)}, []store.DevUser{dev(member, orgName, siret)}},
		{"by sub, without organization", store.DevUserFilter{Sub: loner.Sub}, []store.DevUser{dev(loner, "", "")}},
		{"inactive users are left out", store.DevUserFilter{Sub: inactive.Sub}, nil},
		{"devices are left out", store.DevUserFilter{Sub: device.Sub}, nil},
		{"NUL matches nobody", store.DevUserFilter{Email: "a\x00b@example.test"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.DevUsers(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DevUsers(%+v) (-want +got):\n%s", tt.f, diff)
			}
		})
	}

	t.Run("First comes first, in its order, within the limit", func(t *testing.T) {
		storetest.User(t, s, org) // at least one other
		got, err := s.DevUsers(t.Context(), store.DevUserFilter{First: []string{loner.Sub, member.Sub}, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Sub != loner.Sub || got[1].Sub != member.Sub {
			t.Errorf("DevUsers(First) = %+v, want %s, %s, then one other", got, loner.Sub, member.Sub)
		}
	})
}
