package store

import (
	"fmt"
	"net/url"
)

// withRuntimeParam adds a server run-time parameter to a postgres:// URL (pgx sends unknown
// query parameters as run-time parameters at connection start).
func withRuntimeParam(dsn, key, value string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse DATABASE_URL: not a postgres:// URL")
	}
	q := u.Query()
	if q.Get(key) == "" {
		q.Set(key, value)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
