package store_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"lasuite.fr/people/store"
)

// KindOf tells a database out of reach (retryable: UNAVAILABLE) from every other failure,
// through the wraps that store methods and resolvers add.
func TestKindOfUnavailable(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Severity: "FATAL", Code: code} }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tt := range []struct {
		name string
		err  error
		want store.Kind
	}{
		{"admin_shutdown", pg("57P01"), store.KindUnavailable},
		{"crash_shutdown", pg("57P02"), store.KindUnavailable},
		{"cannot_connect_now", pg("57P03"), store.KindUnavailable},
		{"connection_failure", pg("08006"), store.KindUnavailable},
		{"too_many_connections", pg("53300"), store.KindUnavailable},
		{"connection refused", refused, store.KindUnavailable},
		{"a closed connection", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), store.KindUnavailable},
		{"EOF", io.EOF, store.KindUnavailable},
		{"reset", syscall.ECONNRESET, store.KindUnavailable},
		{"bad connection", driver.ErrBadConn, store.KindUnavailable},
		{"connection done", sql.ErrConnDone, store.KindUnavailable},
		{"pool wait past the deadline", context.DeadlineExceeded, store.KindUnavailable},
		{"statement timeout", pg("57014"), store.KindInternal},
		{"unique violation without a known constraint", pg("23505"), store.KindInternal},
		{"syntax error", pg("42601"), store.KindInternal},
		{"client went away", context.Canceled, store.KindInternal},
		{"a bug", errors.New("boom"), store.KindInternal},
		{"not found", &store.Error{Kind: store.KindNotFound}, store.KindNotFound},
	} {
		wrapped := fmt.Errorf("update user: %w", fmt.Errorf("select: %w", tt.err))
		if got := store.KindOf(wrapped); got != tt.want {
			t.Errorf("%s: KindOf() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A store whose database does not answer fails with KindUnavailable.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now: connection refused
	_, err = store.Open(t.Context(), "postgres://people:x@"+addr+"/people?sslmode=disable&connect_timeout=5", store.Options{})
	if got := store.KindOf(err); got != store.KindUnavailable {
		t.Errorf("Open() on a closed port: kind %v (%v), want unavailable", got, err)
	}
}
