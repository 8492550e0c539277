package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// refusedNetworks are the destinations a webhook may not reach unless WEBHOOK_ALLOWED_NETWORKS
// names them: this machine, the deployment's private networks and the cloud metadata service
// (169.254.169.254), which a staff member, or whoever controls a webhook's DNS, could otherwise
// make the server call with a bearer secret and read back through the delivery's status.
// IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) are unmapped before the check.
var refusedNetworks = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",      // "this network": 0.0.0.0 reaches this machine on Linux
		"10.0.0.0/8",     // RFC 1918
		"100.64.0.0/10",  // carrier-grade NAT, often a cloud's internal network
		"127.0.0.0/8",    // loopback
		"169.254.0.0/16", // link-local, the cloud metadata services among them
		"172.16.0.0/12",  // RFC 1918
		"192.0.0.0/24",   // IETF protocol assignments
		"192.168.0.0/16", // RFC 1918
		"198.18.0.0/15",  // benchmarking
		"224.0.0.0/4",    // multicast
		"240.0.0.0/4",    // reserved, and the broadcast address
		"::/96",          // unspecified, loopback and the deprecated IPv4-compatible forms
		"64:ff9b:1::/48", // local-use NAT64
		"fc00::/7",       // unique-local
		"fe80::/10",      // link-local
		"fec0::/10",      // site-local (deprecated)
		"ff00::/8",       // multicast
		"2001:db8::/32",  // documentation
		"100::/64",       // discard-only
		"2001:10::/28",   // ORCHID
		"64:ff9b::/96",   // NAT64 to an IPv4 address: checked as that address below
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// destinationAllowed reports whether a webhook may connect to ip: an address in allowed always,
// else any address outside refusedNetworks.
func destinationAllowed(ip netip.Addr, allowed []netip.Prefix) bool {
	ip = ip.Unmap().WithZone("")
	for _, p := range allowed {
		if p.Contains(ip) {
			return true
		}
	}
	if nat64.Contains(ip) { // the well-known NAT64 prefix reaches the IPv4 address in its last 32 bits
		b := ip.As16()
		return destinationAllowed(netip.AddrFrom4([4]byte(b[12:])), allowed)
	}
	for _, p := range refusedNetworks {
		if p.Contains(ip) {
			return false
		}
	}
	return ip.IsValid()
}

// refusedDestinationError is a webhook host that resolved to an address it may not reach. The
// address is for the operators' log only: staff see the class (Sender.classify).
type refusedDestinationError struct{ addr netip.Addr }

func (e *refusedDestinationError) Error() string {
	return fmt.Sprintf("refused destination %s (not in WEBHOOK_ALLOWED_NETWORKS)", e.addr)
}

// dialer opens the webhooks' connections. It resolves the host itself, checks every
// address of the answer, and connects to those very addresses: the address checked is the
// address connected to, so a name that resolves to a public address for a check and to a
// private one a moment later (DNS rebinding) cannot get through. One refused address refuses
// the whole name, whichever address a dial would have tried first.
type dialer struct {
	allowed  []netip.Prefix
	resolver *net.Resolver // net.DefaultResolver; tests point it at their own DNS server
	dialer   net.Dialer
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := d.resolver.LookupNetIP(ctx, "ip", host) // an IP literal comes back as is
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if !destinationAllowed(ip, d.allowed) {
			return nil, &refusedDestinationError{ip.Unmap()}
		}
	}
	var errs []error
	for _, ip := range ips {
		c, err := d.dialer.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, &net.DNSError{Err: "no address", Name: host, IsNotFound: true}
	}
	return nil, errors.Join(errs...)
}
