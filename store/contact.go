package store

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Contact is an address-book entry: a user's own (owner set), a public one (no owner), a
// user's override of a public one, or a user's profile (user set, owned by that user).
type Contact struct {
	bun.BaseModel `bun:"table:contacts,alias:c"`

	ID         uuid.UUID      `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	CreatedAt  time.Time      `bun:"created_at,nullzero,notnull,default:now()"`
	UpdatedAt  time.Time      `bun:"updated_at,nullzero,notnull,default:now()"`
	OverrideID *uuid.UUID     `bun:"override_id,type:uuid"`
	OwnerID    *uuid.UUID     `bun:"owner_id,type:uuid"`
	UserID     *uuid.UUID     `bun:"user_id,type:uuid"`
	FullName   string         `bun:"full_name,notnull"`
	ShortName  string         `bun:"short_name,nullzero"`
	Notes      string         `bun:"notes,notnull"`
	Data       map[string]any `bun:"data,type:jsonb,notnull"`
}

// ContactView is a contact as one viewer sees it.
type ContactView struct {
	Contact  `bun:",extend"`
	ViewerID uuid.UUID `bun:"-"`
}

// ContactAbilities is what a viewer may do with a contact.
type ContactAbilities struct {
	Get, Update, Delete bool
}

// Abilities follows People's Contact.get_abilities: only the owner writes, and a profile
// contact cannot be deleted.
func (c ContactView) Abilities() ContactAbilities {
	owner := c.OwnerID != nil && *c.OwnerID == c.ViewerID
	return ContactAbilities{Get: true, Update: owner, Delete: owner && c.UserID == nil}
}

// contactVisible is what a viewer may read: their own contacts, public contacts, and the
// profile contacts of the users of their organization.
const contactVisible = `(c.owner_id = ?0
	OR c.owner_id IS NULL
	OR c.user_id IN (SELECT ou.id FROM users ou WHERE ou.organization_id = (SELECT organization_id FROM users WHERE id = ?0)))`

// contactListed is contactVisible less the public contacts the viewer overrides: in a list the
// override takes their place. People hides a contact overridden by anyone from everyone.
const contactListed = `(c.owner_id = ?0
	OR (c.owner_id IS NULL AND NOT EXISTS (SELECT 1 FROM contacts mine WHERE mine.override_id = c.id AND mine.owner_id = ?0))
	OR c.user_id IN (SELECT ou.id FROM users ou WHERE ou.organization_id = (SELECT organization_id FROM users WHERE id = ?0)))`

type contactRow struct {
	ContactView `bun:",extend"`
	Total
}

// ContactFilter narrows Contacts.
type ContactFilter struct {
	Search string // fragment of the full name, short name or an email in the data
	Page
}

// Contacts lists the contacts the actor sees, by full name then short name as in People.
func (s *Store) Contacts(ctx context.Context, actor uuid.UUID, f ContactFilter) (List[ContactView], error) {
	if err := CheckPage(f.Page); err != nil {
		return List[ContactView]{}, err
	}
	var rows []contactRow
	q := s.db.NewSelect().Model(&rows).ColumnExpr("c.*, count(*) OVER () AS total_count").
		Where(contactListed, actor)
	if term := searchTerm(f.Search); term != "" {
		q = q.Where(`(search_key(c.full_name) LIKE search_key(?0) OR search_key(c.short_name) LIKE search_key(?0)
			OR search_key(contact_emails(c.data)) LIKE search_key(?0))`, term)
	}
	if err := f.Page.window(q.OrderExpr("c.full_name, c.short_name, c.id")).Scan(ctx); err != nil {
		return List[ContactView]{}, fromDB("select contacts", err)
	}
	return newList(f.Page, rows, func(r contactRow) ContactView {
		r.ViewerID = actor
		return r.ContactView
	}), nil
}

// ContactByID returns a contact the actor may see; any other is KindNotFound.
func (s *Store) ContactByID(ctx context.Context, actor, id uuid.UUID) (*ContactView, error) {
	c := &ContactView{ViewerID: actor}
	if err := s.db.NewSelect().Model(c).Where("c.id = ?", id).Where(contactVisible, actor).Scan(ctx); err != nil {
		return nil, notFoundOr(err, "contact", "select contact")
	}
	return c, nil
}

// ContactsByIDs returns the contacts among ids that the actor may see, for loaders.
func (s *Store) ContactsByIDs(ctx context.Context, actor uuid.UUID, ids []uuid.UUID) ([]ContactView, error) {
	var cs []ContactView
	if err := s.db.NewSelect().Model(&cs).Where("c.id IN (?)", bun.List(ids)).Where(contactVisible, actor).Scan(ctx); err != nil {
		return nil, fromDB("select contacts", err)
	}
	for i := range cs {
		cs[i].ViewerID = actor
	}
	return cs, nil
}

// NewContact is a contact to create for the actor.
type NewContact struct {
	FullName   string
	ShortName  string
	Notes      string
	Data       map[string]any
	OverrideID *uuid.UUID // a public contact to override
}

func checkContact(fullName, shortName, notes string, data map[string]any) (string, string, error) {
	fullName, shortName = strings.TrimSpace(fullName), strings.TrimSpace(shortName)
	switch {
	case fullName == "":
		return "", "", invalid("fullName", "the full name cannot be blank")
	case utf8.RuneCountInString(fullName) > 150:
		return "", "", invalid("fullName", "the full name may have at most 150 characters")
	case utf8.RuneCountInString(shortName) > 30:
		return "", "", invalid("shortName", "the short name may have at most 30 characters")
	case !storableText(fullName):
		return "", "", invalid("fullName", "the full name cannot contain a NUL character")
	case !storableText(shortName):
		return "", "", invalid("shortName", "the short name cannot contain a NUL character")
	case !storableText(notes):
		return "", "", invalid("notes", "the notes cannot contain a NUL character")
	}
	return fullName, shortName, ValidateContactData(data)
}

// contactChanges are the fields a contact operation set, named without their values: a
// contact's content is private to its owner, and the audit trail is read by staff.
func contactChanges(fields ...string) changes {
	c := changes{}
	for _, f := range fields {
		c[f] = "[changed]"
	}
	return c
}

// CreateContact creates a contact owned by the actor. A user overrides a public contact at
// most once (CONFLICT), and only a public one (BAD_USER_INPUT): the database holds both rules.
func (s *Store) CreateContact(ctx context.Context, actor Actor, in NewContact) (*ContactView, error) {
	fullName, shortName, err := checkContact(in.FullName, in.ShortName, in.Notes, in.Data)
	if err != nil {
		return nil, err
	}
	if in.Data == nil {
		in.Data = map[string]any{}
	}
	c := &ContactView{ViewerID: actor.UserID, Contact: Contact{OwnerID: &actor.UserID, FullName: fullName, ShortName: shortName,
		Notes: in.Notes, Data: in.Data, OverrideID: in.OverrideID}}
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&c.Contact).Returning("*").Exec(ctx); err != nil {
			return fromDB("insert contact", err)
		}
		targets := []uuid.UUID{c.ID}
		if in.OverrideID != nil {
			targets = append(targets, *in.OverrideID)
		}
		set := []string{"fullName"}
		if shortName != "" {
			set = append(set, "shortName")
		}
		if in.Notes != "" {
			set = append(set, "notes")
		}
		if len(in.Data) > 0 {
			set = append(set, "data")
		}
		return audit(ctx, tx, actor, "createContact", targets, contactChanges(set...))
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ContactUpdate holds the contact fields to change; nil means unchanged. The overridden
// contact cannot change, as in People.
type ContactUpdate struct {
	FullName, ShortName, Notes *string
	Data                       map[string]any
}

// UpdateContact changes a contact; its owner only.
func (s *Store) UpdateContact(ctx context.Context, actor Actor, id uuid.UUID, up ContactUpdate) (*ContactView, error) {
	c := &ContactView{ViewerID: actor.UserID}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(c).Where("c.id = ?", id).Where(contactVisible, actor.UserID).For("NO KEY UPDATE OF c").Scan(ctx); err != nil {
			return notFoundOr(err, "contact", "select contact")
		}
		if !c.Abilities().Update {
			return forbidden("only the owner of a contact may change it")
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
		_, err = tx.NewUpdate().Model(&c.Contact).Column("full_name", "short_name", "notes", "data").WherePK().Returning("updated_at").Exec(ctx)
		if err != nil {
			return fromDB("update contact", err)
		}
		return audit(ctx, tx, actor, "updateContact", []uuid.UUID{id}, contactChanges(set...))
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DeleteContact deletes a contact; its owner only, and never a profile contact.
func (s *Store) DeleteContact(ctx context.Context, actor Actor, id uuid.UUID) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		c := &ContactView{ViewerID: actor.UserID}
		if err := tx.NewSelect().Model(c).Where("c.id = ?", id).Where(contactVisible, actor.UserID).For("UPDATE OF c").Scan(ctx); err != nil {
			return notFoundOr(err, "contact", "select contact")
		}
		if !c.Abilities().Delete {
			if c.UserID != nil && c.Abilities().Update {
				return forbidden("a profile contact cannot be deleted")
			}
			return forbidden("only the owner of a contact may delete it")
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM contacts WHERE id = ?", id); err != nil {
			return fromDB("delete contact", err)
		}
		return audit(ctx, tx, actor, "deleteContact", []uuid.UUID{id}, nil)
	})
}
