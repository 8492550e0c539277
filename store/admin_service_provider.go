package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// AdminServiceProvider is a service provider as staff see it.
type AdminServiceProvider struct {
	ServiceProvider `bun:",extend"`
	TeamCount       int `bun:"team_count,scanonly"` // teams shared with it
}

func selectAdminServiceProviders(db bun.IDB, dst any) *bun.SelectQuery {
	return db.NewSelect().Model(dst).ColumnExpr("sp.*").
		ColumnExpr("(SELECT count(*) FROM team_service_providers tsp WHERE tsp.service_provider_id = sp.id) AS team_count")
}

type adminServiceProviderRow struct {
	AdminServiceProvider `bun:",extend"`
	Total
}

// AdminServiceProviders lists every service provider by name, for staff.
func (s *Store) AdminServiceProviders(ctx context.Context, staff StaffActor, f ServiceProviderFilter) (List[AdminServiceProvider], error) {
	if err := staff.check(); err != nil {
		return List[AdminServiceProvider]{}, err
	}
	if err := CheckPage(f.Page); err != nil {
		return List[AdminServiceProvider]{}, err
	}
	var rows []adminServiceProviderRow
	q := selectAdminServiceProviders(s.db, &rows).ColumnExpr("count(*) OVER () AS total_count")
	if term := searchTerm(f.Search); term != "" {
		q = q.Where("(search_key(sp.name) LIKE search_key(?) OR sp.audience_id = ?)", term, strings.ReplaceAll(f.Search, "\x00", ""))
	}
	if err := f.Page.window(q.OrderExpr("sp.name, sp.id")).Scan(ctx); err != nil {
		return List[AdminServiceProvider]{}, fromDB("select service providers", err)
	}
	return newList(f.Page, rows, func(r adminServiceProviderRow) AdminServiceProvider { return r.AdminServiceProvider }), nil
}

// AdminServiceProvidersByIDs returns service providers by id, for staff's loaders.
func (s *Store) AdminServiceProvidersByIDs(ctx context.Context, staff StaffActor, ids []uuid.UUID) ([]AdminServiceProvider, error) {
	if err := staff.check(); err != nil {
		return nil, err
	}
	var sps []AdminServiceProvider
	if err := selectAdminServiceProviders(s.db, &sps).Where("sp.id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, fromDB("select service providers", err)
	}
	return sps, nil
}

// ServiceProvidersByOrganizationIDs returns the service providers linked to each
// organization, by name, for staff's loaders.
func (s *Store) ServiceProvidersByOrganizationIDs(ctx context.Context, staff StaffActor, ids []uuid.UUID) (map[uuid.UUID][]AdminServiceProvider, error) {
	if err := staff.check(); err != nil {
		return nil, err
	}
	var rows []struct {
		AdminServiceProvider `bun:",extend"`
		OrganizationID       uuid.UUID `bun:"organization_id,scanonly"`
	}
	err := selectAdminServiceProviders(s.db, &rows).ColumnExpr("osp.organization_id").
		Join("JOIN organization_service_providers osp ON osp.service_provider_id = sp.id").
		Where("osp.organization_id IN (?)", bun.List(ids)).OrderExpr("sp.name, sp.id").Scan(ctx)
	if err != nil {
		return nil, fromDB("select organization service providers", err)
	}
	out := make(map[uuid.UUID][]AdminServiceProvider, len(ids))
	for _, r := range rows {
		out[r.OrganizationID] = append(out[r.OrganizationID], r.AdminServiceProvider)
	}
	return out, nil
}

func adminServiceProviderByID(ctx context.Context, db bun.IDB, id uuid.UUID) (*AdminServiceProvider, error) {
	sp := new(AdminServiceProvider)
	if err := selectAdminServiceProviders(db, sp).Where("sp.id = ?", id).Scan(ctx); err != nil {
		return nil, notFoundOr(err, "service provider", "select service provider")
	}
	return sp, nil
}

// checkAudience trims an audience id (an OAuth client id), which must be 1 to 256 characters.
func checkAudience(audience string) (string, error) {
	audience = strings.TrimSpace(audience)
	if audience == "" || utf8.RuneCountInString(audience) > 256 || !utf8.ValidString(audience) || !storableText(audience) {
		return "", invalid("audienceId", "the audience id must be 1 to 256 characters")
	}
	return audience, nil
}

// NewServiceProvider is a service provider to create.
type NewServiceProvider struct {
	Name       string // "" takes the audience id, as People's ServiceProvider.save()
	AudienceID string
}

// AdminCreateServiceProvider registers a partner service; staff only. Names and audience ids
// are unique (KindConflict). A service is also registered by the first bearer token that names
// it (ServiceProviderByAudience); registering it first lets staff link it beforehand.
func (s *Store) AdminCreateServiceProvider(ctx context.Context, actor Actor, in NewServiceProvider) (*AdminServiceProvider, error) {
	audience, err := checkAudience(in.AudienceID)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.Name) == "" {
		in.Name = audience
	}
	name, err := checkName(in.Name, 256)
	if err != nil {
		return nil, err
	}
	var sp *AdminServiceProvider
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		var id uuid.UUID
		if err := tx.QueryRowContext(ctx, "INSERT INTO service_providers (name, audience_id) VALUES (?, ?) RETURNING id",
			name, audience).Scan(&id); err != nil {
			return fromDB("insert service provider", err)
		}
		var err error
		if sp, err = adminServiceProviderByID(ctx, tx, id); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "adminCreateServiceProvider", []uuid.UUID{id}, changes{"name": name, "audienceId": audience})
	})
	if err != nil {
		return nil, err
	}
	return sp, nil
}

// ServiceProviderUpdate holds the service provider fields to change; nil means unchanged.
type ServiceProviderUpdate struct {
	Name, AudienceID *string
}

// AdminUpdateServiceProvider renames a service provider or changes its audience id; staff only.
// The tokens of the old audience id then name no known service, and the next one registers it
// again, unlinked.
func (s *Store) AdminUpdateServiceProvider(ctx context.Context, actor Actor, id uuid.UUID, up ServiceProviderUpdate) (*AdminServiceProvider, error) {
	if up.Name != nil {
		name, err := checkName(*up.Name, 256)
		if err != nil {
			return nil, err
		}
		up.Name = &name
	}
	if up.AudienceID != nil {
		audience, err := checkAudience(*up.AudienceID)
		if err != nil {
			return nil, err
		}
		up.AudienceID = &audience
	}
	var sp *AdminServiceProvider
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		q, set := tx.NewUpdate().TableExpr("service_providers").Where("id = ?", id), false
		if up.Name != nil {
			q, set = q.Set("name = ?", *up.Name), true
		}
		if up.AudienceID != nil {
			q, set = q.Set("audience_id = ?", *up.AudienceID), true
		}
		if set {
			if _, err := q.Exec(ctx); err != nil {
				return fromDB("update service provider", err)
			}
		}
		var err error
		if sp, err = adminServiceProviderByID(ctx, tx, id); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "adminUpdateServiceProvider", []uuid.UUID{id},
			changes{}.set("name", up.Name).set("audienceId", up.AudienceID))
	})
	if err != nil {
		return nil, err
	}
	return sp, nil
}

// ServiceProviderLinks are organizations and teams to link a service provider to, or unlink.
type ServiceProviderLinks struct {
	OrganizationIDs, TeamIDs []uuid.UUID
}

// AdminLinkServiceProvider links a service provider to organizations and teams; staff only.
// Links that exist already are kept; an unknown organization or team is KindNotFound. A team
// linked to a service is visible to that service's tokens for its members.
func (s *Store) AdminLinkServiceProvider(ctx context.Context, actor Actor, id uuid.UUID, in ServiceProviderLinks) (*AdminServiceProvider, error) {
	return s.linkServiceProvider(ctx, actor, id, in, true)
}

// AdminUnlinkServiceProvider removes links between a service provider and organizations and
// teams; staff only. Links that do not exist are ignored.
func (s *Store) AdminUnlinkServiceProvider(ctx context.Context, actor Actor, id uuid.UUID, in ServiceProviderLinks) (*AdminServiceProvider, error) {
	return s.linkServiceProvider(ctx, actor, id, in, false)
}

func (s *Store) linkServiceProvider(ctx context.Context, actor Actor, id uuid.UUID, in ServiceProviderLinks, link bool) (*AdminServiceProvider, error) {
	if len(in.OrganizationIDs) > MaxPageSize {
		return nil, invalid("organizationIds", fmt.Sprintf("link at most %d organizations at once", MaxPageSize))
	}
	if len(in.TeamIDs) > MaxPageSize {
		return nil, invalid("teamIds", fmt.Sprintf("link at most %d teams at once", MaxPageSize))
	}
	var sp *AdminServiceProvider
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		// Lock the service provider, so that it cannot be deleted under the links made here.
		if err := tx.NewSelect().TableExpr("service_providers").Column("id").Where("id = ?", id).For("KEY SHARE").Scan(ctx, new(uuid.UUID)); err != nil {
			return notFoundOr(err, "service provider", "select service provider")
		}
		for _, l := range []struct {
			table, column, field string
			ids                  []uuid.UUID
		}{
			{"organization_service_providers", "organization_id", "organizationIds", in.OrganizationIDs},
			{"team_service_providers", "team_id", "teamIds", in.TeamIDs},
		} {
			if len(l.ids) == 0 {
				continue
			}
			if !link {
				_, err := tx.ExecContext(ctx, "DELETE FROM ? WHERE service_provider_id = ? AND ? = ANY (?::uuid[])",
					bun.Ident(l.table), id, bun.Ident(l.column), pgUUIDs(l.ids))
				if err != nil {
					return fromDB("unlink service provider", err)
				}
				continue
			}
			// The rows linked to are locked too (KEY SHARE, as the foreign key would), and an
			// unknown one is the client's error rather than a foreign key violation.
			parent := map[string]string{"organization_id": "organizations", "team_id": "teams"}[l.column]
			var found []uuid.UUID
			err := tx.NewSelect().TableExpr("?", bun.Ident(parent)).Column("id").Where("id = ANY (?::uuid[])", pgUUIDs(l.ids)).
				For("KEY SHARE").Scan(ctx, &found)
			if err != nil {
				return fromDB("select linked rows", err)
			}
			for _, want := range l.ids {
				if !slices.Contains(found, want) {
					return &Error{Kind: KindNotFound, Field: l.field, Message: strings.TrimSuffix(parent, "s") + " not found"}
				}
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO ?0 (?1, service_provider_id) SELECT unnest(?2::uuid[]), ?3 ON CONFLICT DO NOTHING`,
				bun.Ident(l.table), bun.Ident(l.column), pgUUIDs(l.ids), id)
			if err != nil {
				return fromDB("link service provider", err)
			}
		}
		var err error
		if sp, err = adminServiceProviderByID(ctx, tx, id); err != nil {
			return err
		}
		op := "adminUnlinkServiceProvider"
		if link {
			op = "adminLinkServiceProvider"
		}
		targets := append(append([]uuid.UUID{id}, in.OrganizationIDs...), in.TeamIDs...)
		return audit(ctx, tx, actor, op, targets, changes{"organizationIds": nonNil(in.OrganizationIDs), "teamIds": nonNil(in.TeamIDs)})
	})
	if err != nil {
		return nil, err
	}
	return sp, nil
}

// AdminDeleteServiceProvider deletes a service provider with its links to organizations and
// teams; staff only. Its tokens then name no known service, and the next one registers it
// again, unlinked (ServiceProviderByAudience). Audit events keep its id.
func (s *Store) AdminDeleteServiceProvider(ctx context.Context, actor Actor, id uuid.UUID) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		var sp struct {
			Name     string `bun:"name"`
			Audience string `bun:"audience_id"`
		}
		err := tx.NewRaw("DELETE FROM service_providers WHERE id = ? RETURNING name, audience_id", id).Scan(ctx, &sp)
		if err != nil {
			return notFoundOr(err, "service provider", "delete service provider")
		}
		return audit(ctx, tx, actor, "adminDeleteServiceProvider", []uuid.UUID{id}, changes{"name": sp.Name, "audienceId": sp.Audience})
	})
}
