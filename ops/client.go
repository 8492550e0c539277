package ops

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address of the client that sent r. The peer is the client, unless it is
// one of the trusted proxies: then X-Forwarded-For is read from the right, past every trusted
// proxy, to the first address that is not one. Entries further left were written by the
// client, which may put anything there. Invalid when the peer's address cannot be read.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := peerAddr(r)
	if !addr.IsValid() || !contains(trusted, addr) {
		return addr
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return addr // garbage from the client: the last proxy is all we know
			}
			addr = hop.Unmap()
			if !contains(trusted, addr) {
				return addr
			}
		}
	}
	return addr
}

// peerAddr is the address at the other end of r's connection.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
