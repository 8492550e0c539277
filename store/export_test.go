package store

import "github.com/google/uuid"

// OpenSecret opens a stored webhook secret, for tests that read the outbox's rows.
func (s *Store) OpenSecret(stored string, webhookID uuid.UUID) (string, error) {
	return s.secrets.open(stored, webhookID)
}
