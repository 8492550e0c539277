package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// OrganizationLookup is an organization still named by one of its registration ids (a SIRET),
// whose name the companies registry may give.
type OrganizationLookup struct {
	OrganizationID uuid.UUID `bun:"organization_id"`
	RegistrationID string    `bun:"registration_id"` // the organization's name, one of its registration ids
	Attempts       int       `bun:"attempts"`        // the claims so far, this one included (0 outside the queue)
}

// namedByRegistrationID is true for an organization o whose name is one of its registration ids:
// the name a login gave it, which nobody changed since.
const namedByRegistrationID = `EXISTS (SELECT 1 FROM organization_registration_ids r WHERE r.organization_id = o.id AND r.registration_id = o.name)`

// ClaimOrganizationLookups claims up to limit queued lookups that are due (migration 0010),
// making them invisible to other instances for lease, which must outlast a lookup. An
// organization renamed since it was queued leaves the queue instead: its name is settled.
func (s *Store) ClaimOrganizationLookups(ctx context.Context, limit int, lease time.Duration) ([]OrganizationLookup, error) {
	var claimed []struct {
		OrganizationLookup
		Named bool `bun:"named"`
	}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		err := tx.NewRaw(`
			UPDATE organization_registry_lookups l SET attempts = l.attempts + 1, due_at = now() + ? * interval '1 microsecond'
			FROM organizations o
			WHERE o.id = l.organization_id AND l.organization_id IN (
				SELECT c.organization_id FROM organization_registry_lookups c WHERE c.due_at <= now()
				ORDER BY c.due_at, c.id LIMIT ? FOR UPDATE SKIP LOCKED)
			RETURNING l.organization_id, o.name AS registration_id, l.attempts, `+namedByRegistrationID+` AS named`,
			lease.Microseconds(), limit).Scan(ctx, &claimed)
		if err != nil {
			return fromDB("claim organization lookups", err)
		}
		var renamed []uuid.UUID
		for _, c := range claimed {
			if !c.Named {
				renamed = append(renamed, c.OrganizationID)
			}
		}
		if len(renamed) > 0 {
			if _, err := tx.ExecContext(ctx, "DELETE FROM organization_registry_lookups WHERE organization_id IN (?)", bun.List(renamed)); err != nil {
				return fromDB("drop organization lookups", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []OrganizationLookup
	for _, c := range claimed {
		if c.Named {
			out = append(out, c.OrganizationLookup)
		}
	}
	return out, nil
}

// OrganizationLookupFailed puts a claimed lookup back in the queue, due in retryIn, or takes it
// out of the queue when retryIn is 0 (no such establishment, or given up).
func (s *Store) OrganizationLookupFailed(ctx context.Context, organizationID uuid.UUID, retryIn time.Duration) error {
	q := "UPDATE organization_registry_lookups SET due_at = now() + ? * interval '1 microsecond' WHERE organization_id = ?"
	args := []any{retryIn.Microseconds(), organizationID}
	if retryIn <= 0 {
		q, args = "DELETE FROM organization_registry_lookups WHERE organization_id = ?", []any{organizationID}
	}
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		return fromDB("record organization lookup", err)
	}
	return nil
}

// NameOrganizationFromRegistry gives the organization the registry's name and merges metadata
// into its own, only while its name is still registrationID, one of its registration ids: an
// organization its administrators or staff renamed meanwhile keeps their name and its metadata,
// whichever commits first (the UPDATE re-reads the name under the row's lock). renamed says
// whether it did. Either way the organization leaves the lookup queue. A name longer than the
// column is cut, as a login cuts the name it makes.
func (s *Store) NameOrganizationFromRegistry(ctx context.Context, organizationID uuid.UUID, registrationID, name string, metadata map[string]any) (renamed bool, err error) {
	name, err = checkName(truncate(name, 100), 100)
	if err != nil {
		return false, err
	}
	if metadata == nil {
		metadata = map[string]any{}
	}
	md, err := json.Marshal(metadata)
	if err != nil {
		return false, fmt.Errorf("encode organization metadata: %w", err)
	}
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE organizations o SET name = ?, metadata = o.metadata || ?::jsonb
			WHERE o.id = ? AND o.name = ? AND `+namedByRegistrationID, name, string(md), organizationID, registrationID)
		if err != nil {
			return fromDB("name organization", err)
		}
		n, _ := res.RowsAffected()
		renamed = n == 1
		if _, err := tx.ExecContext(ctx, "DELETE FROM organization_registry_lookups WHERE organization_id = ?", organizationID); err != nil {
			return fromDB("drop organization lookup", err)
		}
		return nil
	})
	return renamed, err
}

// OrganizationsNamedByRegistrationID lists, by id after after, up to limit organizations
// still named by one of their registration ids, queued or not: what
// `people fill-organization-metadata` looks up.
func (s *Store) OrganizationsNamedByRegistrationID(ctx context.Context, after uuid.UUID, limit int) ([]OrganizationLookup, error) {
	var out []OrganizationLookup
	err := s.db.NewRaw(`SELECT o.id AS organization_id, o.name AS registration_id, 0 AS attempts FROM organizations o
		WHERE o.id > ? AND `+namedByRegistrationID+` ORDER BY o.id LIMIT ?`, after, limit).Scan(ctx, &out)
	if err != nil {
		return nil, fromDB("select organizations named by registration id", err)
	}
	return out, nil
}
