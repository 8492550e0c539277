package auth

import (
	"net"
	"net/netip"
	"strings"
)

// LoopbackHost reports whether a Host header names this machine: localhost or a loopback
// address (127.0.0.0/8, [::1]), with or without a port. No name is resolved. The endpoints
// kept for local clients (the development provider's token minting, /metrics) also require
// it of a loopback peer: a page of another site whose name was rebound to 127.0.0.1 reaches
// them from a loopback peer, but sends its own name (DNS rebinding).
func LoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}
