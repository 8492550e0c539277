package store

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// AdminOrganization is an organization as staff see it: every field, whoever looks.
type AdminOrganization struct {
	Organization    `bun:",extend"`
	RegistrationIDs []string `bun:"registration_ids,array,scanonly"`
	Domains         []string `bun:"domains,array,scanonly"`
}

func selectAdminOrganizations(db bun.IDB, dst any) *bun.SelectQuery {
	return db.NewSelect().Model(dst).ColumnExpr("o.*").
		ColumnExpr("ARRAY(SELECT registration_id FROM organization_registration_ids r WHERE r.organization_id = o.id ORDER BY registration_id) AS registration_ids").
		ColumnExpr("ARRAY(SELECT domain FROM organization_domains d WHERE d.organization_id = o.id ORDER BY domain) AS domains")
}

type adminOrganizationRow struct {
	AdminOrganization `bun:",extend"`
	Total
}

// AdminOrganizationFilter narrows AdminOrganizations.
type AdminOrganizationFilter struct {
	Search string // fragment of the name, or exactly a registration id or a domain
	Page
}

// AdminOrganizations lists every organization by name, for staff.
func (s *Store) AdminOrganizations(ctx context.Context, staff StaffActor, f AdminOrganizationFilter) (List[AdminOrganization], error) {
	if err := staff.check(); err != nil {
		return List[AdminOrganization]{}, err
	}
	if err := CheckPage(f.Page); err != nil {
		return List[AdminOrganization]{}, err
	}
	var rows []adminOrganizationRow
	q := selectAdminOrganizations(s.db, &rows).ColumnExpr("count(*) OVER () AS total_count")
	if term := searchTerm(f.Search); term != "" {
		exact := strings.TrimSpace(strings.ReplaceAll(f.Search, "\x00", ""))
		q = q.Where(`(search_key(o.name) LIKE search_key(?0)
			OR EXISTS (SELECT 1 FROM organization_registration_ids r WHERE r.organization_id = o.id AND r.registration_id = ?1)
			OR EXISTS (SELECT 1 FROM organization_domains d WHERE d.organization_id = o.id AND d.domain = lower(?1)))`, term, exact)
	}
	if err := f.Page.window(q.OrderExpr("o.name, o.id")).Scan(ctx); err != nil {
		return List[AdminOrganization]{}, fromDB("select organizations", err)
	}
	return newList(f.Page, rows, func(r adminOrganizationRow) AdminOrganization { return r.AdminOrganization }), nil
}

// AdminOrganizationsByIDs returns organizations by id, for staff's loaders.
func (s *Store) AdminOrganizationsByIDs(ctx context.Context, staff StaffActor, ids []uuid.UUID) ([]AdminOrganization, error) {
	if err := staff.check(); err != nil {
		return nil, err
	}
	var os []AdminOrganization
	if err := selectAdminOrganizations(s.db, &os).Where("o.id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, fromDB("select organizations", err)
	}
	return os, nil
}

func adminOrganizationByID(ctx context.Context, db bun.IDB, id uuid.UUID) (*AdminOrganization, error) {
	o := new(AdminOrganization)
	if err := selectAdminOrganizations(db, o).Where("o.id = ?", id).Scan(ctx); err != nil {
		return nil, notFoundOr(err, "organization", "select organization")
	}
	return o, nil
}

// OrganizationAdministratorsByOrganizationIDs returns the administrators of each organization,
// by name, for staff's loaders.
func (s *Store) OrganizationAdministratorsByOrganizationIDs(ctx context.Context, staff StaffActor, ids []uuid.UUID) (map[uuid.UUID][]User, error) {
	if err := staff.check(); err != nil {
		return nil, err
	}
	var rows []struct {
		User           `bun:",extend"`
		OrganizationID uuid.UUID `bun:"access_organization_id,scanonly"`
	}
	err := s.db.NewSelect().Model(&rows).ColumnExpr("u.*, oa.organization_id AS access_organization_id").
		Join("JOIN organization_accesses oa ON oa.user_id = u.id").
		Where("oa.organization_id IN (?)", bun.List(ids)).OrderExpr("u.name, u.email, u.id").Scan(ctx)
	if err != nil {
		return nil, fromDB("select organization administrators", err)
	}
	out := make(map[uuid.UUID][]User, len(ids))
	for _, r := range rows {
		out[r.OrganizationID] = append(out[r.OrganizationID], r.User)
	}
	return out, nil
}

// OrganizationsByServiceProviderIDs returns the organizations linked to each service
// provider, by name, for staff's loaders.
func (s *Store) OrganizationsByServiceProviderIDs(ctx context.Context, staff StaffActor, ids []uuid.UUID) (map[uuid.UUID][]AdminOrganization, error) {
	if err := staff.check(); err != nil {
		return nil, err
	}
	var rows []struct {
		AdminOrganization `bun:",extend"`
		ServiceProviderID uuid.UUID `bun:"service_provider_id,scanonly"`
	}
	err := selectAdminOrganizations(s.db, &rows).ColumnExpr("osp.service_provider_id").
		Join("JOIN organization_service_providers osp ON osp.organization_id = o.id").
		Where("osp.service_provider_id IN (?)", bun.List(ids)).OrderExpr("o.name, o.id").Scan(ctx)
	if err != nil {
		return nil, fromDB("select service provider organizations", err)
	}
	out := make(map[uuid.UUID][]AdminOrganization, len(ids))
	for _, r := range rows {
		out[r.ServiceProviderID] = append(out[r.ServiceProviderID], r.AdminOrganization)
	}
	return out, nil
}

// maxIdentifiers bounds the registration ids and the domains of one organization in one input.
const maxIdentifiers = 100

// checkRegistrationIDs trims and de-duplicates registration ids, each of which must match
// pattern (ORGANIZATION_REGISTRATION_ID_PATTERN, nil for SIRETs) whole, as at login.
func checkRegistrationIDs(ids []string, pattern *regexp.Regexp) ([]string, error) {
	if len(ids) > maxIdentifiers {
		return nil, invalid("registrationIds", fmt.Sprintf("an organization may have at most %d registration ids", maxIdentifiers))
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if !validRegistrationID(id, pattern) {
			return nil, invalid("registrationIds", "a registration id does not have the expected format (ORGANIZATION_REGISTRATION_ID_PATTERN)")
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// checkDomains lower-cases and de-duplicates mail domains, which must be what
// organization_domains holds: ASCII names (an internationalized one in its xn-- form).
func checkDomains(domains []string) ([]string, error) {
	if len(domains) > maxIdentifiers {
		return nil, invalid("domains", fmt.Sprintf("an organization may have at most %d domains", maxIdentifiers))
	}
	out := make([]string, 0, len(domains))
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSpace(d))
		if len(d) > 253 || !domainPattern.MatchString(d) {
			return nil, invalid("domains", "enter valid lower-case domain names such as example.org")
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// setOrganizationIdentifiers makes the organization's registration ids and domains exactly
// these, leaving the rows of those it keeps alone. One held by another organization breaks a
// unique index: KindConflict, as at login, where the same indexes decide.
func setOrganizationIdentifiers(ctx context.Context, tx bun.IDB, org uuid.UUID, regIDs, domains *[]string) error {
	for _, set := range []struct {
		table, column string
		values        *[]string
	}{
		{"organization_registration_ids", "registration_id", regIDs},
		{"organization_domains", "domain", domains},
	} {
		if set.values == nil {
			continue
		}
		vals := pgdialect.Array(*set.values)
		_, err := tx.ExecContext(ctx, "DELETE FROM ? WHERE organization_id = ? AND NOT ? = ANY (?::text[])",
			bun.Ident(set.table), org, bun.Ident(set.column), vals)
		if err != nil {
			return fromDB("delete organization identifiers", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO ?0 (organization_id, ?1) SELECT ?2, v FROM unnest(?3::text[]) AS v
			WHERE NOT EXISTS (SELECT 1 FROM ?0 x WHERE x.organization_id = ?2 AND x.?1 = v)`,
			bun.Ident(set.table), bun.Ident(set.column), org, vals)
		if err != nil {
			return fromDB("insert organization identifiers", err)
		}
	}
	return nil
}

// NewOrganization is an organization to create.
type NewOrganization struct {
	Name            string
	RegistrationIDs []string
	Domains         []string
}

// AdminCreateOrganization creates an organization; staff only. It needs a registration id or a
// domain, and none may belong to another organization (KindConflict). pattern is
// ORGANIZATION_REGISTRATION_ID_PATTERN (nil for SIRETs).
func (s *Store) AdminCreateOrganization(ctx context.Context, actor Actor, in NewOrganization, pattern *regexp.Regexp) (*AdminOrganization, error) {
	name, err := checkName(in.Name, 100)
	if err != nil {
		return nil, err
	}
	regIDs, err := checkRegistrationIDs(in.RegistrationIDs, pattern)
	if err != nil {
		return nil, err
	}
	domains, err := checkDomains(in.Domains)
	if err != nil {
		return nil, err
	}
	if len(regIDs) == 0 && len(domains) == 0 {
		return nil, invalid("registrationIds", "an organization must have at least a registration id or a domain")
	}
	var o *AdminOrganization
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		var id uuid.UUID
		if err := tx.QueryRowContext(ctx, "INSERT INTO organizations (name) VALUES (?) RETURNING id", name).Scan(&id); err != nil {
			return fromDB("insert organization", err)
		}
		if err := setOrganizationIdentifiers(ctx, tx, id, &regIDs, &domains); err != nil {
			return err
		}
		var err error
		if o, err = adminOrganizationByID(ctx, tx, id); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "adminCreateOrganization", []uuid.UUID{id},
			changes{"name": name, "registrationIds": regIDs, "domains": domains})
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// OrganizationUpdate holds the organization fields staff change; nil means unchanged. The
// registration ids and the domains given replace the organization's.
type OrganizationUpdate struct {
	Name            *string
	RegistrationIDs *[]string
	Domains         *[]string
	Metadata        map[string]any
	IsActive        *bool
}

// maxMetadataBytes bounds an organization's metadata, encoded as JSON.
const maxMetadataBytes = 64 << 10

// AdminUpdateOrganization changes an organization; staff only, with the rules of
// AdminCreateOrganization. Metadata, People's free-form JSON object (is_public_service,
// is_commune…), is replaced whole.
func (s *Store) AdminUpdateOrganization(ctx context.Context, actor Actor, id uuid.UUID, up OrganizationUpdate, pattern *regexp.Regexp) (*AdminOrganization, error) {
	if up.Name != nil {
		name, err := checkName(*up.Name, 100)
		if err != nil {
			return nil, err
		}
		up.Name = &name
	}
	if up.RegistrationIDs != nil {
		ids, err := checkRegistrationIDs(*up.RegistrationIDs, pattern)
		if err != nil {
			return nil, err
		}
		up.RegistrationIDs = &ids
	}
	if up.Domains != nil {
		ds, err := checkDomains(*up.Domains)
		if err != nil {
			return nil, err
		}
		up.Domains = &ds
	}
	var metadata []byte
	if up.Metadata != nil {
		var err error
		metadata, err = json.Marshal(up.Metadata)
		switch {
		case err != nil || strings.Contains(string(metadata), `\u0000`):
			return nil, invalid("metadata", "the metadata must be a JSON object without NUL characters")
		case len(metadata) > maxMetadataBytes:
			return nil, invalid("metadata", fmt.Sprintf("the metadata may have at most %d bytes", maxMetadataBytes))
		}
	}
	var o *AdminOrganization
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		cur := new(AdminOrganization)
		if err := selectAdminOrganizations(tx, cur).Where("o.id = ?", id).For("NO KEY UPDATE OF o").Scan(ctx); err != nil {
			return notFoundOr(err, "organization", "select organization")
		}
		regIDs, domains := cur.RegistrationIDs, cur.Domains
		if up.RegistrationIDs != nil {
			regIDs = *up.RegistrationIDs
		}
		if up.Domains != nil {
			domains = *up.Domains
		}
		if len(regIDs) == 0 && len(domains) == 0 {
			return invalid("registrationIds", "an organization must have at least a registration id or a domain")
		}
		q, set := tx.NewUpdate().TableExpr("organizations").Where("id = ?", id), false
		if up.Name != nil {
			q, set = q.Set("name = ?", *up.Name), true
		}
		if metadata != nil {
			q, set = q.Set("metadata = ?::jsonb", string(metadata)), true
		}
		if up.IsActive != nil {
			q, set = q.Set("is_active = ?", *up.IsActive), true
		}
		if set {
			if _, err := q.Exec(ctx); err != nil {
				return fromDB("update organization", err)
			}
		}
		if err := setOrganizationIdentifiers(ctx, tx, id, up.RegistrationIDs, up.Domains); err != nil {
			return err
		}
		var err error
		if o, err = adminOrganizationByID(ctx, tx, id); err != nil {
			return err
		}
		c := changes{}.set("name", up.Name).set("registrationIds", up.RegistrationIDs).set("domains", up.Domains).
			set("isActive", up.IsActive)
		if up.Metadata != nil {
			c["metadata"] = up.Metadata
		}
		return audit(ctx, tx, actor, "adminUpdateOrganization", []uuid.UUID{id}, c)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// AdminGrantOrganizationAdministrator makes a user an administrator of an organization; staff
// only. As in People's admin, the user may belong to any organization, though an administrator
// can only rename the organization they belong to.
func (s *Store) AdminGrantOrganizationAdministrator(ctx context.Context, actor Actor, org, user uuid.UUID) (*AdminOrganization, error) {
	var o *AdminOrganization
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		var err error
		if o, err = adminOrganizationByID(ctx, tx, org); err != nil {
			return err
		}
		var access uuid.UUID
		err = tx.QueryRowContext(ctx, `INSERT INTO organization_accesses (organization_id, user_id, role)
			SELECT ?, id, 'administrator' FROM users WHERE id = ? RETURNING id`, org, user).Scan(&access)
		if err != nil {
			return notFoundOr(err, "user", "insert organization access")
		}
		return audit(ctx, tx, actor, "adminGrantOrganizationAdministrator", []uuid.UUID{org, user, access}, nil)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// AdminRevokeOrganizationAdministrator takes a user's administrator role in an organization
// away; staff only. A user who is not one is KindNotFound.
func (s *Store) AdminRevokeOrganizationAdministrator(ctx context.Context, actor Actor, org, user uuid.UUID) (*AdminOrganization, error) {
	var o *AdminOrganization
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		var access uuid.UUID
		err := tx.QueryRowContext(ctx, "DELETE FROM organization_accesses WHERE organization_id = ? AND user_id = ? RETURNING id",
			org, user).Scan(&access)
		if err != nil {
			return notFoundOr(err, "organization administrator", "delete organization access")
		}
		if o, err = adminOrganizationByID(ctx, tx, org); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "adminRevokeOrganizationAdministrator", []uuid.UUID{org, user, access}, nil)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// AdminDeleteOrganization deletes an organization that has no users and no teams left, with
// its registration ids, domains, administrators' roles and service provider links; staff only.
// One that still has some is a conflict naming both counts: staff move or delete them first.
//
// The row is locked FOR UPDATE before counting, which conflicts with the KEY SHARE lock that
// the foreign keys of users.organization_id and teams.organization_id take (and that a login
// takes on the organization it joins, loginOrganization): a login or a team creation that
// reached the organization first makes this wait and then count its user or team, and one
// that comes second waits and then finds the organization gone, so that no user or team is
// ever left pointing to a deleted organization.
func (s *Store) AdminDeleteOrganization(ctx context.Context, actor Actor, id uuid.UUID) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		var name string
		if err := tx.NewSelect().TableExpr("organizations").Column("name").Where("id = ?", id).For("UPDATE").Scan(ctx, &name); err != nil {
			return notFoundOr(err, "organization", "lock organization")
		}
		var users, teams int
		err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM users WHERE organization_id = ?0),
			(SELECT count(*) FROM teams WHERE organization_id = ?0)`, id).Scan(&users, &teams)
		if err != nil {
			return fromDB("count organization members", err)
		}
		if users > 0 || teams > 0 {
			return conflict("id", fmt.Sprintf("this organization still has %d users and %d teams: move or delete them first", users, teams))
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM organizations WHERE id = ?", id); err != nil {
			return fromDB("delete organization", err)
		}
		return audit(ctx, tx, actor, "adminDeleteOrganization", []uuid.UUID{id}, changes{"name": name})
	})
}
