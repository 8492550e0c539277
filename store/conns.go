package store

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// closeWait bounds how long Close waits for the connections the store opened: a cancel
// request gives up after 15 seconds on its own (pgconn), a shutdown should not wait that long.
const closeWait = 5 * time.Second

// openConns counts the network connections a store's pool opened and has not closed yet,
// cancel requests included: pgx sends one on a connection of its own, from a goroutine, when
// a statement's context ends while it runs (a request whose client left, a worker stopped at
// shutdown), and the pool forgets that connection at once. Close waits for them, so that the
// process does not exit in the middle of one: PgBouncer 1.18 (Debian 12's) frees a cancel
// request's client twice when the client leaves before PgBouncer has passed it on, and dies
// (FATAL "bad client state: 0", pgbouncer/pgbouncer#801), cutting every instance off.
type openConns struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n is 0
}

func newOpenConns() *openConns {
	idle := make(chan struct{})
	close(idle)
	return &openConns{idle: idle}
}

// dial wraps next so that the connections it opens are counted until closed.
func (c *openConns) dial(next pgconn.DialFunc) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.n == 0 {
			c.idle = make(chan struct{})
		}
		c.n++
		c.mu.Unlock()
		return &countedConn{Conn: conn, closed: sync.OnceFunc(c.done)}, nil
	}
}

func (c *openConns) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		close(c.idle)
	}
}

// wait waits until every counted connection is closed, for at most d.
func (c *openConns) wait(d time.Duration) {
	c.mu.Lock()
	idle := c.idle
	c.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

// countedConn is a connection that openConns counts until it is closed.
type countedConn struct {
	net.Conn
	closed func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.closed()
	return err
}
