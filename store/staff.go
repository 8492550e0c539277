package store

import (
	"context"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// StaffRequest names whom `people create-staff` makes staff: the user with ID; else the user
// of the identity (Issuer, Subject), created with that identity when there is none; else the
// one user whose email is Email (compared case-insensitively), created when there is none.
type StaffRequest struct {
	ID              uuid.UUID // uuid.Nil: go by Subject, else by Email
	Issuer, Subject string    // an identity at a provider; Subject "": go by Email
	Email           string
	Name            string // the name of a user created here; "" for none (an existing user keeps theirs)
}

// CreateStaff makes a user active staff, reactivating them if need be: the first staff user
// comes from the command line (people create-staff), as People's from createsuperuser. Several
// users with one email are refused, as a login refuses them: the operator names one by id.
// created says whether the user was made here; the event is recorded with the command line as
// its actor.
//
// A user made here exists before anyone logged in as them, so that an operator can set up the
// first staff account ahead of its owner. They get the email, the name, a profile contact as a
// login gives one, no organization (the first login gives it, by the registration id or email
// domain, without making them its administrator) and no identity: users.sub is the user's own
// id, as createLoginUser stores when a subject is unusable. That value never lets anyone in:
// logins and bearer tokens match subjects in user_identities only, never users.sub. The first
// login reaches the user through the email fallback, which links the provider's (issuer,
// subject); so the user is made only when o.FallbackToEmail is on, else the answer is
// KindNotFound, for a user made then could never log in (and their first login would make a
// second account with the same email). The email is locked as ProvisionLogin locks it, so a
// first login racing the command cannot make a second user either. Only a login whose email
// the provider vouches for reaches such a user (Claims.EmailVerified).
//
// By Subject, no email is involved: the user made here holds the identity (Issuer, Subject),
// with an empty audience as a browser login has, so that the first login with exactly that
// identity is this user, whatever email it brings, and no other login ever is. The subject is
// locked as ProvisionLogin locks it.
func (s *Store) CreateStaff(ctx context.Context, r StaffRequest, o LoginOptions) (u *User, created bool, err error) {
	switch {
	case r.ID != uuid.Nil:
	case r.Subject != "":
		if r.Issuer == "" || !utf8.ValidString(r.Issuer) || !storableText(r.Issuer) ||
			!utf8.ValidString(r.Subject) || !storableText(r.Subject) || utf8.RuneCountInString(r.Subject) > 255 {
			return nil, false, invalid("subject", "the issuer and subject must be non-empty text, the subject at most 255 characters")
		}
		if r.Name, err = checkUserName(r.Name); err != nil {
			return nil, false, err
		}
	default:
		if r.Email, err = NormalizeEmail("email", r.Email); err != nil {
			return nil, false, err
		} else if !emailLike(r.Email) || !utf8.ValidString(r.Email) || !storableText(r.Email) {
			return nil, false, invalid("email", "enter a valid email address")
		}
		if r.Name, err = checkUserName(r.Name); err != nil {
			return nil, false, err
		}
	}
	u = new(User)
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var users []User
		q := tx.NewSelect().Model(&users).OrderExpr("u.created_at, u.id").Limit(2).For("NO KEY UPDATE OF u")
		switch {
		case r.ID != uuid.Nil:
			q = q.Where("u.id = ?", r.ID)
		case r.Subject != "":
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?, hashtext(?))",
				lockLoginSubject, r.Issuer+"\n"+r.Subject); err != nil {
				return fromDB("lock login subject", err)
			}
			q = q.Where("u.id = (SELECT ui.user_id FROM user_identities ui WHERE ui.issuer = ? AND ui.subject = ? AND ui.audience = '')",
				r.Issuer, r.Subject)
		default:
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?, hashtext(lower(?)))", lockLoginEmail, r.Email); err != nil {
				return fromDB("lock login email", err)
			}
			q = q.Where("lower(u.email) = lower(?)", r.Email)
		}
		if err := q.Scan(ctx); err != nil {
			return fromDB("select user", err)
		}
		switch {
		case len(users) == 0 && (r.ID != uuid.Nil || r.Subject == "" && !o.FallbackToEmail):
			return notFound("user")
		case len(users) == 0:
			created = true
			return createStaffUser(ctx, tx, u, r)
		case len(users) == 2:
			return conflict("email", "several users have this email: name one by id")
		}
		*u = users[0]
		c := changes{}
		if !u.IsStaff {
			c["isStaff"] = true
		}
		if !u.IsActive {
			c["isActive"] = true
		}
		err := tx.NewRaw("UPDATE users SET is_staff = true, is_active = true WHERE id = ? RETURNING *", u.ID).Scan(ctx, u)
		if err != nil {
			return fromDB("update user", err)
		}
		return audit(ctx, tx, CommandActor, "createStaff", []uuid.UUID{u.ID}, c)
	})
	if err != nil {
		return nil, false, err
	}
	return u, created, nil
}

// createStaffUser inserts the staff user of r into u, with its identity when r names one, and
// its profile contact. users.sub is the user's own id either way: the identity lives in
// user_identities, as a login's does.
func createStaffUser(ctx context.Context, tx bun.Tx, u *User, r StaffRequest) error {
	err := tx.NewRaw(`INSERT INTO users (id, sub, email, name, is_staff) VALUES (?0, ?0::text, ?1, ?2, true) RETURNING *`,
		uuid.New(), nullable(r.Email), nullable(r.Name)).Scan(ctx, u)
	if err != nil {
		return fromDB("insert user", err)
	}
	if r.Subject != "" {
		if err := insertIdentity(ctx, tx, u.ID, loginClaims{issuer: r.Issuer, subject: r.Subject}); err != nil {
			return err
		}
	}
	if err := insertProfileContact(ctx, tx, u.ID, r.Name, r.Email); err != nil {
		return err
	}
	return audit(ctx, tx, CommandActor, "createStaff", []uuid.UUID{u.ID}, changes{"userCreated": true, "isStaff": true})
}
