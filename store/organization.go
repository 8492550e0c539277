package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Organization is a public body or company, identified by registration ids (SIRET) or mail
// domains; users belong to one.
type Organization struct {
	bun.BaseModel `bun:"table:organizations,alias:o"`

	ID        uuid.UUID      `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	CreatedAt time.Time      `bun:"created_at,nullzero,notnull,default:now()"`
	UpdatedAt time.Time      `bun:"updated_at,nullzero,notnull,default:now()"`
	Name      string         `bun:"name,notnull"`
	Metadata  map[string]any `bun:"metadata,type:jsonb,notnull"`
	IsActive  bool           `bun:"is_active,notnull"`
}

// OrganizationView is an organization as one viewer sees it.
type OrganizationView struct {
	Organization    `bun:",extend"`
	RegistrationIDs []string `bun:"registration_ids,array,scanonly"`
	Domains         []string `bun:"domains,array,scanonly"`
	ViewerIsMember  bool     `bun:"viewer_is_member,scanonly"`
	ViewerIsAdmin   bool     `bun:"viewer_is_admin,scanonly"`
}

// OrganizationAbilities is what a viewer may do with an organization.
type OrganizationAbilities struct {
	Get, Update, Delete bool
}

// Abilities follows People's Organization.get_abilities: members read their own organization,
// its administrators rename it, nobody deletes it through the API.
func (o OrganizationView) Abilities() OrganizationAbilities {
	return OrganizationAbilities{Get: o.ViewerIsMember, Update: o.ViewerIsMember && o.ViewerIsAdmin}
}

func selectOrganizations(db bun.IDB, viewer uuid.UUID, dst any) *bun.SelectQuery {
	return db.NewSelect().Model(dst).ColumnExpr("o.*").
		ColumnExpr("ARRAY(SELECT registration_id FROM organization_registration_ids r WHERE r.organization_id = o.id ORDER BY registration_id) AS registration_ids").
		ColumnExpr("ARRAY(SELECT domain FROM organization_domains d WHERE d.organization_id = o.id ORDER BY domain) AS domains").
		ColumnExpr("EXISTS (SELECT 1 FROM users vu WHERE vu.id = ? AND vu.organization_id = o.id) AS viewer_is_member", viewer).
		ColumnExpr("EXISTS (SELECT 1 FROM organization_accesses oa WHERE oa.user_id = ? AND oa.organization_id = o.id) AS viewer_is_admin", viewer)
}

// OrganizationByID returns the actor's own organization; any other is KindNotFound, as People
// limits the queryset to the user's organization.
func (s *Store) OrganizationByID(ctx context.Context, actor uuid.UUID, id uuid.UUID) (*OrganizationView, error) {
	o := new(OrganizationView)
	err := selectOrganizations(s.db, actor, o).
		Where("o.id = ?", id).
		Where("o.id = (SELECT organization_id FROM users WHERE id = ?)", actor).Scan(ctx)
	if err != nil {
		return nil, notFoundOr(err, "organization", "select organization")
	}
	return o, nil
}

// OrganizationsByIDs returns organizations by id for loaders (User.organization): a user's
// organization is visible wherever the user is.
func (s *Store) OrganizationsByIDs(ctx context.Context, actor uuid.UUID, ids []uuid.UUID) ([]OrganizationView, error) {
	var os []OrganizationView
	if err := selectOrganizations(s.db, actor, &os).Where("o.id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, fromDB("select organizations", err)
	}
	return os, nil
}

// RenameOrganization changes the name of the actor's own organization; its administrators only.
func (s *Store) RenameOrganization(ctx context.Context, actor Actor, id uuid.UUID, name string) (*OrganizationView, error) {
	name, err := checkName(name, 100)
	if err != nil {
		return nil, err
	}
	if !storableText(name) {
		return nil, invalid("name", "the name cannot contain a NUL character")
	}
	var o *OrganizationView
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		o = new(OrganizationView)
		err := selectOrganizations(tx, actor.UserID, o).Where("o.id = ?", id).
			Where("o.id = (SELECT organization_id FROM users WHERE id = ?)", actor.UserID).For("NO KEY UPDATE OF o").Scan(ctx)
		if err != nil {
			return notFoundOr(err, "organization", "select organization")
		}
		if !o.Abilities().Update {
			return forbidden("only administrators of an organization may rename it")
		}
		if _, err := tx.ExecContext(ctx, "UPDATE organizations SET name = ? WHERE id = ?", name, id); err != nil {
			return fromDB("update organization", err)
		}
		o.Name = name
		return audit(ctx, tx, actor, "updateOrganization", []uuid.UUID{id}, changes{"name": name})
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}
