package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// AdminContactFilter narrows AdminContacts; zero fields do not filter.
type AdminContactFilter struct {
	Search  string // fragment of the full name, short name or an email in the data
	OwnerID *uuid.UUID
	Page
}

type adminContactRow struct {
	Contact `bun:",extend"`
	Total
}

// AdminContacts lists every contact, private ones included, by full name then short name, for
// staff.
func (s *Store) AdminContacts(ctx context.Context, staff StaffActor, f AdminContactFilter) (List[Contact], error) {
	if err := staff.check(); err != nil {
		return List[Contact]{}, err
	}
	if err := CheckPage(f.Page); err != nil {
		return List[Contact]{}, err
	}
	var rows []adminContactRow
	q := s.db.NewSelect().Model(&rows).ColumnExpr("c.*, count(*) OVER () AS total_count")
	if term := searchTerm(f.Search); term != "" {
		q = q.Where(`(search_key(c.full_name) LIKE search_key(?0) OR search_key(c.short_name) LIKE search_key(?0)
			OR search_key(contact_emails(c.data)) LIKE search_key(?0))`, term)
	}
	if f.OwnerID != nil {
		q = q.Where("c.owner_id = ?", *f.OwnerID)
	}
	if err := f.Page.window(q.OrderExpr("c.full_name, c.short_name, c.id")).Scan(ctx); err != nil {
		return List[Contact]{}, fromDB("select contacts", err)
	}
	return newList(f.Page, rows, func(r adminContactRow) Contact { return r.Contact }), nil
}

// AdminUpdateContact corrects any contact, with UpdateContact's rules (People's contact JSON
// schema for the data); staff only. The audit event names the fields changed, never their
// content, as for the owner's own changes.
func (s *Store) AdminUpdateContact(ctx context.Context, actor Actor, id uuid.UUID, up ContactUpdate) (*Contact, error) {
	c := new(Contact)
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		if err := tx.NewSelect().Model(c).Where("c.id = ?", id).For("NO KEY UPDATE OF c").Scan(ctx); err != nil {
			return notFoundOr(err, "contact", "select contact")
		}
		var set []string
		if up.FullName != nil {
			c.FullName, set = *up.FullName, append(set, "fullName")
		}
		if up.ShortName != nil {
			c.ShortName, set = *up.ShortName, append(set, "shortName")
		}
		if up.Notes != nil {
			c.Notes, set = *up.Notes, append(set, "notes")
		}
		if up.Data != nil {
			c.Data, set = up.Data, append(set, "data")
		}
		var err error
		if c.FullName, c.ShortName, err = checkContact(c.FullName, c.ShortName, c.Notes, c.Data); err != nil {
			return err
		}
		_, err = tx.NewUpdate().Model(c).Column("full_name", "short_name", "notes", "data").WherePK().Returning("updated_at").Exec(ctx)
		if err != nil {
			return fromDB("update contact", err)
		}
		return audit(ctx, tx, actor, "adminUpdateContact", []uuid.UUID{id}, contactChanges(set...))
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
