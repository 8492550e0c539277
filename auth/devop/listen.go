package devop

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// Path is where server.go mounts the provider: its issuer is PUBLIC_URL + Path.
const Path = "/dev-oidc"

// ErrRemote is CheckListenAddr's refusal.
var ErrRemote = errors.New("the development OpenID provider serves only a loopback listen address")

// CheckListenAddr says whether the provider may be mounted on a server listening on addr (a
// LISTEN_ADDR): it may when the host is a loopback address (127.0.0.0/8, ::1) or localhost, or
// when allowRemote (DEV_OIDC_ALLOW_REMOTE, for a container whose port only its host reaches).
// An empty host (":8071") listens on every interface and is refused: no name is resolved.
func CheckListenAddr(addr string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: cannot read LISTEN_ADDR %q: %v", ErrRemote, addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: LISTEN_ADDR %q reaches other machines; listen on 127.0.0.1 (make run does) or set DEV_OIDC_ALLOW_REMOTE=true", ErrRemote, addr)
}
