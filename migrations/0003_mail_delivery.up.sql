-- 0003: delivery bookkeeping for queued emails: when to try next, and why the last try failed.
ALTER TABLE mail_queue
	ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
	ADD COLUMN last_error text;
DROP INDEX mail_queue_pending_idx;
CREATE INDEX mail_queue_due_idx ON mail_queue (next_attempt_at) WHERE sent_at IS NULL;
