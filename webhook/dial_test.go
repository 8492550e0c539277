package webhook

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
	"lasuite.fr/people/webhook/webhooktest"
)

func TestDestinationAllowed(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		allowed []string
		want    bool
	}{
		{"203.0.113.7", nil, true},
		{"8.8.8.8", nil, true},
		{"2001:4860:4860::8888", nil, true},
		{"64:ff9b::808:808", nil, true}, // NAT64 of 8.8.8.8
		{"127.0.0.1", nil, false},
		{"127.1.2.3", nil, false},
		{"::1", nil, false},
		{"::ffff:127.0.0.1", nil, false},
		{"::ffff:10.1.2.3", nil, false},
		{"::127.0.0.1", nil, false},
		{"0.0.0.0", nil, false},
		{"::", nil, false},
		{"10.0.0.1", nil, false},
		{"172.16.0.1", nil, false},
		{"172.31.255.255", nil, false},
		{"192.168.1.1", nil, false},
		{"100.64.0.1", nil, false},
		{"100.127.255.254", nil, false},
		{"169.254.169.254", nil, false}, // cloud metadata
		{"::ffff:169.254.169.254", nil, false},
		{"fe80::1", nil, false},
		{"fe80::1%eth0", nil, false},
		{"fc00::1", nil, false},
		{"fd12:3456::1", nil, false},
		{"fd00:ec2::254", nil, false}, // AWS's IPv6 metadata
		{"224.0.0.1", nil, false},
		{"ff02::1", nil, false},
		{"255.255.255.255", nil, false},
		{"64:ff9b::a00:1", nil, false}, // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", []string{"127.0.0.0/8"}, true},
		{"127.0.0.1", []string{"127.0.0.1/32"}, true},
		{"::ffff:127.0.0.1", []string{"127.0.0.1/32"}, true},
		{"127.0.0.2", []string{"127.0.0.1/32"}, false},
		{"10.20.30.40", []string{"10.20.0.0/16"}, true},
		{"10.21.30.40", []string{"10.20.0.0/16"}, false},
		{"fd00::5", []string{"fd00::/8"}, true},
	} {
		var allowed []netip.Prefix
		for _, a := range tc.allowed {
			allowed = append(allowed, netip.MustParsePrefix(a))
		}
		if got := destinationAllowed(netip.MustParseAddr(tc.addr), allowed); got != tc.want {
			t.Errorf("destinationAllowed(%s, %v) = %v, want %v", tc.addr, tc.allowed, got, tc.want)
		}
	}
}

// dnsServer is an authoritative DNS server on 127.0.0.1 (UDP) for the webhook tests' names:
// answer gives the A records of the n-th A query (n counts from 1); AAAA queries get none.
type dnsServer struct {
	pc      net.PacketConn
	mu      sync.Mutex
	queries int
	answer  func(n int) []netip.Addr
}

func startDNS(t *testing.T, answer func(n int) []netip.Addr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{pc: pc, answer: answer}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			if msg, err := d.respond(buf[:n]); err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return d
}

func (d *dnsServer) respond(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if q.Type == dnsmessage.TypeA {
		d.mu.Lock()
		d.queries++
		addrs := d.answer(d.queries)
		d.mu.Unlock()
		for _, a := range addrs {
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET}, dnsmessage.AResource{A: a.As4()})
		}
	}
	return b.Finish()
}

func (d *dnsServer) aQueries() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries
}

// resolver asks only this server.
func (d *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "udp", d.pc.LocalAddr().String())
	}}
}

// TestWebhookRefusedDestinations: a webhook whose host is, or resolves to, a webhooktest.Loopback address
// is refused without any connection unless WEBHOOK_ALLOWED_NETWORKS allows it, and staff read
// the failure's class, not the address.
func TestWebhookRefusedDestinations(t *testing.T) {
	s := storetest.Open(t)
	dev := store.New(s.DB(), store.Options{WebhookAllowHTTP: true})
	const refused = "refused destination: a private or local address (WEBHOOK_ALLOWED_NETWORKS)"
	r := webhooktest.StartReceiver(t, false)
	port := r.Server.URL[strings.LastIndex(r.Server.URL, ":")+1:]

	// attempt makes one delivery to url with sender and returns the webhook's state after it.
	attempt := func(t *testing.T, sender *Sender, url string) store.TeamWebhook {
		t.Helper()
		team := storetest.TeamWithEveryRole(t, s)
		w, err := dev.CreateTeamWebhook(t.Context(), store.NewTeamWebhook{TeamID: team.ID, URL: url, Secret: "s3cret"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.DeleteTeamWebhook(context.Background(), w.ID) })
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		if _, err := sender.SendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		return webhooktest.WebhookOf(t, s, w)
	}
	refusing := func() *Sender {
		w := testSender(s, nil, time.Hour)
		w.cfg.AllowHTTP, w.dial.allowed = true, nil
		return w
	}

	for _, tc := range []struct{ name, url string }{
		{"webhooktest.Loopback address", r.Server.URL + "/hook"},
		{"localhost", "http://localhost:" + port + "/hook"},
		{"IPv4-mapped webhooktest.Loopback", "http://[::ffff:127.0.0.1]:" + port + "/hook"},
		{"IPv6 webhooktest.Loopback", "http://[::1]:" + port + "/hook"},
		{"unspecified", "http://0.0.0.0:" + port + "/hook"},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/"},
		{"private", "http://10.0.0.1:" + port + "/hook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := attempt(t, refusing(), tc.url)
			if ws.LastError != refused || ws.Status != store.WebhookStatusPending {
				t.Errorf("webhook %+v, want pending with lastError %q", ws, refused)
			}
			if n := r.Connections(); n != 0 {
				t.Errorf("the receiver accepted %d connections, want none", n)
			}
		})
	}

	t.Run("allowed network", func(t *testing.T) {
		sender := refusing()
		sender.dial.allowed = []netip.Prefix{webhooktest.Loopback}
		if ws := attempt(t, sender, "http://localhost:"+port+"/hook"); ws.Status != store.WebhookStatusSuccess || ws.LastError != "" {
			t.Errorf("webhook %+v, want delivered to an allowed network", ws)
		}
		if got := r.Receipts(); len(got) != 1 || got[0].Authorization != "Bearer s3cret" {
			t.Errorf("receipts %+v, want the delivery", got)
		}
	})
}

// TestWebhookDNSRebinding: the address checked is the address connected to. A name whose first
// answer is an allowed address and later ones the receiver's refused 127.0.0.1 is resolved once
// per attempt, and the attempt goes to the first answer (where nothing listens), never to the
// receiver; a name with one refused address among its answers is refused whole.
func TestWebhookDNSRebinding(t *testing.T) {
	s := storetest.Open(t)
	dev := store.New(s.DB(), store.Options{WebhookAllowHTTP: true})
	r := webhooktest.StartReceiver(t, false)
	port := r.Server.URL[strings.LastIndex(r.Server.URL, ":")+1:]
	allowed, target := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")

	for _, tc := range []struct {
		name   string
		answer func(n int) []netip.Addr
		want   string
	}{
		{"rebinding after the first answer", func(n int) []netip.Addr {
			if n == 1 {
				return []netip.Addr{allowed}
			}
			return []netip.Addr{target}
		}, "connection failed"},
		{"one refused address among several", func(int) []netip.Addr { return []netip.Addr{allowed, target} },
			"refused destination: a private or local address (WEBHOOK_ALLOWED_NETWORKS)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns := startDNS(t, tc.answer)
			sender := testSender(s, nil, time.Hour)
			sender.cfg.AllowHTTP = true
			sender.dial.allowed = []netip.Prefix{netip.PrefixFrom(allowed, 32)}
			sender.dial.resolver = dns.resolver()

			team := storetest.TeamWithEveryRole(t, s)
			w, err := dev.CreateTeamWebhook(t.Context(), store.NewTeamWebhook{TeamID: team.ID,
				URL: "http://rebind.webhook.test:" + port + "/hook", Secret: "s3cret"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.DeleteTeamWebhook(context.Background(), w.ID) })
			storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
			if _, err := sender.SendDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			if ws := webhooktest.WebhookOf(t, s, w); ws.LastError != tc.want {
				t.Errorf("lastError %q, want %q", ws.LastError, tc.want)
			}
			if n := dns.aQueries(); n != 1 {
				t.Errorf("%d A queries for one attempt, want 1", n)
			}
			if n := r.Connections(); n != 0 {
				t.Errorf("the receiver accepted %d connections, want none", n)
			}
		})
	}
}
