package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Kind says what went wrong in terms a client can act on.
type Kind uint8

const (
	KindInternal  Kind = iota + 1 // not one of ours: a bug or an outage
	KindNotFound                  // absent, or hidden from this caller: never reveal which
	KindForbidden                 // visible to the caller, but their role does not allow it
	KindInvalid                   // input breaks a model rule; Field names the input
	KindConflict                  // breaks a uniqueness rule
	KindLimited                   // the actor did this too often lately: retry later
	// KindUnavailable is the database out of reach: down, shutting down, restarting or in
	// recovery. Nothing was done that the client cannot simply try again.
	KindUnavailable
)

func (k Kind) String() string {
	switch k {
	case 0:
		return "ok"
	case KindInternal:
		return "internal"
	case KindNotFound:
		return "not found"
	case KindForbidden:
		return "forbidden"
	case KindInvalid:
		return "invalid"
	case KindConflict:
		return "conflict"
	case KindLimited:
		return "limited"
	case KindUnavailable:
		return "unavailable"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Error is a failure whose Message is written for API clients.
type Error struct {
	Kind           Kind
	Field, Message string
}

func (e *Error) Error() string { return e.Message }

// KindOf returns 0 for nil, KindUnavailable for a database out of reach (Unavailable), and
// KindInternal for any other error that is not an *Error. The error itself is kept as it is,
// for the log: only its kind is decided here, once for every caller.
func KindOf(err error) Kind {
	var e *Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Kind
	case Unavailable(err):
		return KindUnavailable
	}
	return KindInternal
}

// Unavailable reports whether err says that the database cannot be reached or cannot serve
// now, rather than that a statement failed: a client may retry. These are
//
//   - PostgreSQL refusing or ending the session: class 08 (connection exception), 57P01
//     admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up, in
//     recovery), 53300 too_many_connections;
//   - no connection at all: pgx's connect errors, network errors, a connection closed under
//     the statement (io.EOF, io.ErrUnexpectedEOF, ECONNRESET, EPIPE, ECONNREFUSED),
//     database/sql's ErrBadConn and ErrConnDone, pgx's errors that it marks safe to retry
//     (nothing was sent);
//   - a request whose deadline passed waiting for the database, a pool connection included.
//
// Any other PostgreSQL error (a constraint, a statement timeout, a bug of ours) is not.
func Unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch c := pgErr.Code; {
		case strings.HasPrefix(c, "08"), c == "57P01", c == "57P02", c == "57P03", c == "53300":
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr), pgconn.SafeToRetry(err):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNREFUSED):
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

func notFound(what string) error { return &Error{Kind: KindNotFound, Message: what + " not found"} }

func forbidden(msg string) error { return &Error{Kind: KindForbidden, Message: msg} }

func invalid(field, msg string) error { return &Error{Kind: KindInvalid, Field: field, Message: msg} }

func conflict(field, msg string) error { return &Error{Kind: KindConflict, Field: field, Message: msg} }

// constraintErrors maps the names of constraints declared in migrations/ to what a client is
// told when a write breaks them. A renamed constraint fails TestConstraintMessages instead of
// quietly turning into INTERNAL.
var constraintErrors = map[string]Error{
	"users_sub_key":                                     {KindConflict, "sub", "a user with this subject already exists"},
	"users_sub_check":                                   {KindInvalid, "sub", "the subject may only contain letters, digits and @.+-_"},
	"users_email_check":                                 {KindInvalid, "email", "enter a valid email address"},
	"users_language_check":                              {KindInvalid, "language", "the language must be en-us or fr-fr"},
	"users_timezone_fkey":                               {KindInvalid, "timezone", "the time zone must be a valid IANA name such as Europe/Paris"},
	"user_identities_issuer_subject_audience_key":       {KindConflict, "sub", "this identity is already linked to a user"},
	"organizations_name_check":                          {KindInvalid, "name", "the name cannot be blank"},
	"organizations_identified_check":                    {KindInvalid, "registrationIds", "an organization must have at least a registration id or a domain"},
	"organization_registration_ids_registration_id_key": {KindConflict, "registrationIds", "this registration id already belongs to an organization"},
	"organization_domains_domain_key":                   {KindConflict, "domains", "this domain already belongs to an organization"},
	"organization_domains_domain_check":                 {KindInvalid, "domains", "enter a valid lower-case domain name"},
	"organization_accesses_user_id_organization_id_key": {KindConflict, "userId", "this user is already an administrator of this organization"},
	"service_providers_name_key":                        {KindConflict, "name", "a service provider with this name already exists"},
	"service_providers_audience_id_key":                 {KindConflict, "audienceId", "a service provider with this audience id already exists"},
	"teams_name_check":                                  {KindInvalid, "name", "the name cannot be blank"},
	"teams_parent_exists_check":                         {KindNotFound, "parentId", "parent team not found"},
	"teams_parent_organization_check":                   {KindInvalid, "parentId", "a team's parent must be of the same organization"},
	"teams_parent_cycle_check":                          {KindInvalid, "parentId", "a team cannot be moved under itself or one of its descendants"},
	"teams_depth_check":                                 {KindInvalid, "parentId", "a team tree may have at most 80 levels"},
	"teams_parent_id_fkey":                              {KindConflict, "cascade", "this team has child teams"},
	"team_accesses_team_id_user_id_key":                 {KindConflict, "userId", "this user is already in this team"},
	"team_accesses_user_id_fkey":                        {KindNotFound, "userId", "user not found"},
	"team_service_providers_service_provider_id_fkey":   {KindInvalid, "serviceProviderIds", "unknown service provider"},
	"team_webhooks_team_id_fkey":                        {KindNotFound, "teamId", "team not found"},
	"team_webhooks_team_id_url_key":                     {KindConflict, "url", "this team already has a webhook with this URL"},
	"team_webhooks_url_check":                           {KindInvalid, "url", "enter an http or https URL without user name or password"},
	"team_webhooks_secret_check":                        {KindInvalid, "secret", "the secret may only contain visible ASCII characters, without spaces"},
	"team_webhooks_protocol_check":                      {KindInvalid, "protocol", "unknown protocol"},
	"invitations_email_team_id_key":                     {KindConflict, "email", "this email has already been invited to this team"},
	"invitations_email_check":                           {KindInvalid, "email", "enter a valid email address"},
	"contacts_full_name_check":                          {KindInvalid, "fullName", "the full name cannot be blank"},
	"contacts_data_check":                               {KindInvalid, "data", "the contact data does not match the contact schema"},
	"contacts_owner_id_override_id_key":                 {KindConflict, "overrideId", "you already override this contact"},
	"contacts_override_public_check":                    {KindInvalid, "overrideId", "only a public contact can be overridden"},
	"contacts_override_not_self_check":                  {KindInvalid, "overrideId", "a contact cannot override itself"},
	"contacts_override_id_fkey":                         {KindInvalid, "overrideId", "the contact to override does not exist"},
}

// Breaks reports whether err is the client error of the constraint named constraint (one of
// ConstraintNames), for a transport that words that failure its own way, as People's REST
// API words a duplicate invitation.
func Breaks(err error, constraint string) bool {
	want, ok := constraintErrors[constraint]
	var e *Error
	return ok && errors.As(err, &e) && *e == want
}

// ConstraintNames returns the constraint names that fromDB translates into client errors, sorted,
// so that tests can check each one against the migrated schema.
func ConstraintNames() []string {
	return slices.Sorted(maps.Keys(constraintErrors))
}

// lengthFields names the input behind a value too long for its column (PostgreSQL reports the
// column only in the message, so the table decides).
var lengthFields = map[string]string{
	"users": "name", "organizations": "name", "teams": "name", "contacts": "fullName",
	"service_providers": "name", "invitations": "email", "team_webhooks": "url",
}

// fromDB turns expected database errors into *Error and wraps the rest with op.
func fromDB(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err // already written for the client
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if e, ok := constraintErrors[pgErr.ConstraintName]; ok {
			return &e
		}
		if pgErr.Code == "22001" { // string_data_right_truncation
			return &Error{Kind: KindInvalid, Field: lengthFields[pgErr.TableName], Message: "a value is too long"}
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// notFoundOr maps "no rows" to a KindNotFound naming what, and anything else through fromDB.
func notFoundOr(err error, what, op string) error {
	if errors.Is(err, sql.ErrNoRows) || KindOf(err) == KindNotFound {
		return notFound(what)
	}
	return fromDB(op, err)
}
