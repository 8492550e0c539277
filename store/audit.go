package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// ActorMethod is how an actor authenticated; the values are what audit_events stores.
type ActorMethod string

// The ways an actor acts.
const (
	ActorSession ActorMethod = "session" // a browser session
	ActorBearer  ActorMethod = "bearer"  // a partner service's token on a user's behalf
	ActorLogin   ActorMethod = "login"   // a browser login provisioning its own user
	ActorCommand ActorMethod = "command" // the command line (people create-staff): no user
)

// CommandActor is the operator at the command line.
var CommandActor = Actor{Method: ActorCommand}

func (a Actor) method() ActorMethod {
	switch {
	case a.Method != "":
		return a.Method
	case a.viaService():
		return ActorBearer
	}
	return ActorSession
}

// AuditEvent is one mutation as the audit trail recorded it. Events are append-only: a
// trigger refuses to update or delete them (migrations/0005_audit_events.up.sql).
type AuditEvent struct {
	bun.BaseModel `bun:"table:audit_events,alias:ae"`

	ID                uuid.UUID      `bun:"id,pk,type:uuid"`
	CreatedAt         time.Time      `bun:"created_at"`
	ActorID           *uuid.UUID     `bun:"actor_id,type:uuid"` // nil for the command line
	ActorMethod       ActorMethod    `bun:"actor_method"`
	ServiceProviderID *uuid.UUID     `bun:"service_provider_id,type:uuid"` // a bearer token's service
	Operation         string         `bun:"operation"`                     // the GraphQL mutation, or loginProvision, createStaff
	TargetIDs         []uuid.UUID    `bun:"target_ids,array"`
	Changes           map[string]any `bun:"changes,type:jsonb"` // fields set, by their API names
}

// Redacted stands for a secret in an event's changes: that it was set, never its value.
const Redacted = "[set]"

// changes are the fields an operation set, by their API names, for the audit trail.
type changes map[string]any

// set records field when v is not a nil pointer, dereferenced.
func (c changes) set(field string, v any) changes {
	switch p := v.(type) {
	case *string:
		if p != nil {
			c[field] = *p
		}
	case *bool:
		if p != nil {
			c[field] = *p
		}
	case *uuid.UUID:
		if p != nil {
			c[field] = *p
		}
	case *[]uuid.UUID:
		if p != nil {
			c[field] = *p
		}
	case *[]string:
		if p != nil {
			c[field] = *p
		}
	default:
		c[field] = v
	}
	return c
}

// audit appends an event to the audit trail through db, which must be the transaction of the
// change it records, so that both commit or neither does. Every mutating method calls it last,
// once its checks have passed and its writes succeeded.
func audit(ctx context.Context, db bun.IDB, actor Actor, op string, targets []uuid.UUID, c changes) error {
	if c == nil {
		c = changes{}
	}
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode audit changes: %w", err)
	}
	var actorID, sp *uuid.UUID
	if actor.UserID != uuid.Nil {
		actorID = &actor.UserID
	}
	m := actor.method()
	if m == ActorBearer {
		sp = &actor.ServiceProviderID
	}
	if targets == nil {
		targets = []uuid.UUID{}
	}
	_, err = db.ExecContext(ctx, `INSERT INTO audit_events (actor_id, actor_method, service_provider_id, operation, target_ids, changes)
		VALUES (?, ?, ?, ?, ?::uuid[], ?::jsonb)`, actorID, m, sp, op, pgUUIDs(targets), string(body))
	return fromDB("insert audit event", err)
}

// AuditFilter narrows AuditEvents; zero fields do not filter.
type AuditFilter struct {
	ActorID   *uuid.UUID
	TargetID  *uuid.UUID
	Operation string
	Since     *time.Time // at or after
	Until     *time.Time // before
	Page
}

type auditRow struct {
	AuditEvent `bun:",extend"`
	Total
}

// AuditEvents lists audit events, newest first. It is for staff: there is no actor, and the
// caller checks that the principal is staff.
func (s *Store) AuditEvents(ctx context.Context, staff StaffActor, f AuditFilter) (List[AuditEvent], error) {
	if err := staff.check(); err != nil {
		return List[AuditEvent]{}, err
	}
	if err := CheckPage(f.Page); err != nil {
		return List[AuditEvent]{}, err
	}
	var rows []auditRow
	q := s.db.NewSelect().Model(&rows).
		Column("ae.id", "ae.created_at", "ae.actor_id", "ae.actor_method", "ae.service_provider_id", "ae.operation", "ae.target_ids", "ae.changes").
		ColumnExpr("count(*) OVER () AS total_count")
	if f.ActorID != nil {
		q = q.Where("ae.actor_id = ?", *f.ActorID)
	}
	if f.TargetID != nil {
		q = q.Where("ae.target_ids @> ARRAY[?]::uuid[]", *f.TargetID) // served by the GIN index
	}
	if !storableText(f.Operation) {
		return List[AuditEvent]{}, nil // no operation name holds NUL, which PostgreSQL refuses
	}
	if f.Operation != "" {
		q = q.Where("ae.operation = ?", f.Operation)
	}
	if f.Since != nil {
		q = q.Where("ae.created_at >= ?", *f.Since)
	}
	if f.Until != nil {
		q = q.Where("ae.created_at < ?", *f.Until)
	}
	if err := f.Page.window(q.OrderExpr("ae.created_at DESC, ae.seq DESC")).Scan(ctx); err != nil {
		return List[AuditEvent]{}, fromDB("select audit events", err)
	}
	return newList(f.Page, rows, func(r auditRow) AuditEvent { return r.AuditEvent }), nil
}
