package store

import (
	"errors"
	"net"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MatrixRoom is the room a Matrix webhook's URL links to.
type MatrixRoom struct {
	// ID is the room as the link names it: a room id ("!opaque:server") or an alias
	// ("#name:server").
	ID string
	// Server is the server name of ID, after its first colon: a host, with a port or not. People
	// took the text up to the next colon, which drops a port.
	Server string
}

// Host is the room's server name without its port.
func (r MatrixRoom) Host() string {
	if h, _, err := net.SplitHostPort(r.Server); err == nil {
		return h
	}
	return strings.Trim(r.Server, "[]")
}

// matrixServerName is the specification's server name: a DNS name or an IP address literal,
// with an optional port.
var matrixServerName = regexp.MustCompile(`^([A-Za-z0-9.-]{1,255}|[0-9]{1,3}(\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?$`)

// matrixLocalpart is a room id's opaque part or an alias' name, which may be any Unicode text
// but for the colon that ends it, the slash that would start an event id in a matrix.to link,
// spaces and control characters.
var matrixLocalpart = regexp.MustCompile(`^[^:/[:space:][:cntrl:]]{1,200}$`)

var errNotMatrixRoom = errors.New("not a link to a Matrix room")

// ParseMatrixRoom reads the room of a Matrix webhook's URL: a link in People's form,
// https://<client>/#/room/<room> (Element's and Tchap's web clients), or matrix.to's,
// https://matrix.to/#/<room>, whose ?via= and event id after the room are ignored. The room is
// a room id or an alias, percent-encoded or not.
func ParseMatrixRoom(raw string) (MatrixRoom, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" {
		return MatrixRoom{}, errNotMatrixRoom
	}
	f := strings.TrimPrefix(u.Fragment, "/")
	f = strings.TrimPrefix(f, "room/")
	f, _, _ = strings.Cut(f, "?")
	f, _, _ = strings.Cut(f, "/")
	if len(f) < 4 || (f[0] != '!' && f[0] != '#') || !utf8.ValidString(f) {
		return MatrixRoom{}, errNotMatrixRoom
	}
	local, server, ok := strings.Cut(f[1:], ":")
	if !ok || !matrixLocalpart.MatchString(local) || !matrixServerName.MatchString(server) {
		return MatrixRoom{}, errNotMatrixRoom
	}
	return MatrixRoom{ID: f, Server: server}, nil
}

// checkMatrixRoomURL accepts a link to a Matrix room (ParseMatrixRoom), or a bare room id or
// alias, stored as its matrix.to link so that staff read a URL as for every webhook.
func checkMatrixRoomURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if strings.HasPrefix(raw, "!") || strings.HasPrefix(raw, "#") {
		raw = "https://matrix.to/#/" + raw
	}
	if _, err := ParseMatrixRoom(raw); err != nil {
		return "", invalid("url", "enter a link to the Matrix room, such as https://matrix.to/#/!roomid:example.org or https://www.tchap.gouv.fr/#/room/!roomid:agent.tchap.gouv.fr")
	}
	u, _ := url.Parse(raw)
	out := u.String()
	if len(out) > 2048 {
		return "", invalid("url", "the URL may have at most 2048 characters")
	}
	return out, nil
}
