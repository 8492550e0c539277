package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// revocationChannel is where migration 0007's triggers announce revoked sessions and users.
const revocationChannel = "people_revocations"

// Revocation is one announcement: a session that may no longer be what it was, a user who may
// no longer be active, or All when anything may have changed.
type Revocation struct {
	// All: drop everything. A statement changed more than 100 rows, a table was truncated, or
	// the listener (re)connected and notifications may have been missed while it was away.
	All       bool
	TokenHash []byte    // a session's token hash (the SHA-256 of its cookie)
	UserID    uuid.UUID // a user deactivated or deleted
}

// parseRevocation reads a payload of migration 0007. A payload it does not know means All: a
// newer schema's announcement is still a revocation.
func parseRevocation(payload string) Revocation {
	kind, value, _ := strings.Cut(payload, ":")
	switch kind {
	case "s":
		if h, err := hex.DecodeString(value); err == nil && len(h) == 32 {
			return Revocation{TokenHash: h}
		}
	case "u":
		if id, err := uuid.Parse(value); err == nil {
			return Revocation{UserID: id}
		}
	}
	return Revocation{All: true}
}

// Timings of the listener. A silent network failure is noticed by the ping within about
// two pingEvery; a refused connection is retried after retryMin, doubling up to retryMax.
const (
	pingEvery = 5 * time.Second
	retryMin  = 250 * time.Millisecond
	retryMax  = 30 * time.Second
)

// Revocations listens on the revocation channel over one connection of its own (LISTEN needs a
// session that stays, which a pool's connections do not) and hands every announcement to its
// subscribers, in order, on its own goroutine. While it is not listening (before the first
// connection, and from a lost connection until LISTEN succeeds again) announcements are lost:
// Listening says so, and every (re)connection begins with an All, so that whatever was cached
// while it was away goes.
type Revocations struct {
	cfg       *pgx.ConnConfig
	log       *slog.Logger
	mu        sync.Mutex
	subs      []func(Revocation)
	listening atomic.Bool
	pid       atomic.Uint32
}

// Revocations returns a listener over the database the store was opened on (by Open), with the
// same credentials and settings, or over Options.ListenURL; it does nothing until Run. Behind a
// transaction pooler without ListenURL it answers ErrNoListener.
func (s *Store) Revocations(log *slog.Logger) (*Revocations, error) {
	if s.connConfig == nil && s.pooled {
		return nil, ErrNoListener
	}
	if s.connConfig == nil {
		return nil, errors.New("revocations: the store was not made by store.Open")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := s.connConfig.Copy()
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "people revocations" // what pg_stat_activity shows operators
	}
	return &Revocations{cfg: cfg, log: log}, nil
}

// Subscribe adds fn, which is called with each announcement on the listener's goroutine: it
// must be quick and must not call back into the listener.
func (r *Revocations) Subscribe(fn func(Revocation)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs = append(r.subs, fn)
}

// Listening reports whether announcements are arriving: connected, LISTEN done, and the
// subscribers told to drop what they cached before.
func (r *Revocations) Listening() bool { return r.listening.Load() }

// PID is the process id of the listener's backend, 0 when it is not connected: what an operator
// would pass to pg_terminate_backend (tests do, to cut it).
func (r *Revocations) PID() uint32 { return r.pid.Load() }

// Run listens until ctx is done, reconnecting after a failure.
func (r *Revocations) Run(ctx context.Context) {
	wait := retryMin
	for {
		listened, err := r.listen(ctx)
		r.listening.Store(false)
		r.pid.Store(0)
		if ctx.Err() != nil {
			return
		}
		if listened {
			wait = retryMin
			r.log.ErrorContext(ctx, "revocation listener lost: credential checks go to the database until it is back", "err", err)
		} else {
			r.log.ErrorContext(ctx, "revocation listener cannot connect", "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// listen runs one connection until it fails or ctx is done; listened reports whether it got as
// far as listening.
func (r *Revocations) listen(ctx context.Context) (listened bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, pingEvery)
	conn, err := pgx.ConnectConfig(cctx, r.cfg)
	cancel()
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+revocationChannel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	r.pid.Store(conn.PgConn().PID())
	// Listening only once the subscribers dropped what they hold: an entry cached from a read
	// made while no one listened may be stale.
	r.deliver(Revocation{All: true})
	r.listening.Store(true)
	r.log.InfoContext(ctx, "revocation listener listening")
	for {
		wctx, cancel := context.WithTimeout(ctx, pingEvery)
		n, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		if n != nil {
			r.deliver(parseRevocation(n.Payload))
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return true, nil
		case timedOut:
			// Nothing came: make sure the connection is still there, rather than trust a silence
			// that a dead network would give as well.
			pctx, cancel := context.WithTimeout(ctx, pingEvery)
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return true, fmt.Errorf("ping: %w", err)
			}
		default:
			return true, fmt.Errorf("wait for notification: %w", err)
		}
	}
}

func (r *Revocations) deliver(rev Revocation) {
	r.mu.Lock()
	subs := r.subs
	r.mu.Unlock()
	for _, fn := range subs {
		fn(rev)
	}
}
