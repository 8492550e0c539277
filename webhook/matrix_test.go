package webhook

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
	"lasuite.fr/people/webhook/webhooktest"
)

// matrixSender is testSender for a Matrix homeserver: it trusts m's certificate, may reach
// 127.0.0.1, and has the MATRIX_* settings o adds.
func matrixSender(s *store.Store, m *webhooktest.MatrixHomeserver, o Options) *Sender {
	o.MaxAge, o.Retention, o.Roots = time.Hour, time.Hour, m.Roots()
	if o.AllowedNetworks == nil {
		o.AllowedNetworks = []netip.Prefix{webhooktest.Loopback}
	}
	w := New(o, s, slog.New(slog.DiscardHandler))
	w.timeout, w.lease, w.backoffBase, w.backoffCap = 15*time.Second, time.Minute, 40*time.Millisecond, 40*time.Millisecond
	return w
}

const botToken = "syt_bot_token"

// matrixLocal is the Matrix localpart People derives from an email.
func matrixLocal(email string) string { return strings.ReplaceAll(email, "@", "-") }

// People's Matrix webhook: the bot joins the room, invites a new member and kicks a removed one,
// with the webhook's secret as its token and People's reasons.
func TestMatrixWebhookInviteAndKick(t *testing.T) {
	s := storetest.Open(t)
	m := webhooktest.StartMatrixHomeserver(t, botToken)
	room := "!team:" + m.Addr()
	m.AddRoom(room, "", true)
	team := storetest.TeamWithEveryRole(t, s)
	var name string
	if err := s.DB().QueryRowContext(t.Context(), "SELECT name FROM teams WHERE id = ?", team.ID).Scan(&name); err != nil {
		t.Fatal(err)
	}
	w := webhooktest.MatrixHook(t, s, team.ID, "https://app.element.io/#/room/"+room, botToken)
	sender := matrixSender(s, m, Options{})

	newcomer := storetest.User(t, s, team.Org)
	a := storetest.Access(t, s, team.ID, newcomer.ID, store.RoleMember)
	ds := webhooktest.Drain(t, sender.SendDue, s, team.ID)
	mxid := "@" + matrixLocal(newcomer.Email) + ":" + m.Addr()
	if len(ds) != 1 || ds[0].Status != store.WebhookStatusSuccess || ds[0].Attempts != 1 {
		t.Errorf("deliveries %+v, want one success at the first attempt", ds)
	}
	if got := m.Membership(room, mxid); got != "invite" {
		t.Errorf("membership of %s = %q, want invite", mxid, got)
	}
	want := []webhooktest.MatrixRequest{
		{Host: m.Addr(), Path: "/_matrix/client/v3/join/" + room, Authorization: "Bearer " + botToken, Body: map[string]any{}},
		{Host: m.Addr(), Path: "/_matrix/client/v3/rooms/" + room + "/invite", Authorization: "Bearer " + botToken,
			Body: map[string]any{"user_id": mxid, "reason": "User added to team " + name + " on People"}},
	}
	if diff := cmp.Diff(want, m.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	if _, err := s.DeleteTeamAccess(t.Context(), store.UserActor(team.Owner), a); err != nil {
		t.Fatal(err)
	}
	webhooktest.Drain(t, sender.SendDue, s, team.ID)
	if got := m.Membership(room, mxid); got != "leave" {
		t.Errorf("membership after the removal = %q, want leave (kicked)", got)
	}
	got := m.Requests()
	if len(got) != 4 || got[3].Path != "/_matrix/client/v3/rooms/"+room+"/kick" ||
		!cmp.Equal(got[3].Body, map[string]any{"user_id": mxid, "reason": "User removed from team " + name + " on People"}) {
		t.Errorf("requests %+v, want a join then the kick", got)
	}
	if ws := webhooktest.WebhookOf(t, s, w); ws.Status != store.WebhookStatusSuccess || ws.LastError != "" {
		t.Errorf("webhook %+v, want success", ws)
	}
}

// A change already made in the room is a success: an invitation of a member already in it, a
// kick of someone not in it; a retry after an attempt that did its work is therefore harmless.
func TestMatrixWebhookAlreadyDone(t *testing.T) {
	s := storetest.Open(t)
	m := webhooktest.StartMatrixHomeserver(t, botToken)
	room := "!done:" + m.Addr()
	m.AddRoom(room, "", true)
	team := storetest.TeamWithEveryRole(t, s)
	webhooktest.MatrixHook(t, s, team.ID, "https://matrix.to/#/"+room+"?via=example.org", botToken)
	sender := matrixSender(s, m, Options{})

	in, out := storetest.User(t, s, team.Org), storetest.User(t, s, team.Org)
	m.SetMembership(room, "@"+matrixLocal(in.Email)+":"+m.Addr(), "join")
	storetest.Access(t, s, team.ID, in.ID, store.RoleMember)
	a := storetest.Access(t, s, team.ID, out.ID, store.RoleMember)
	if _, err := s.DeleteTeamAccess(t.Context(), store.UserActor(team.Owner), a); err != nil {
		t.Fatal(err)
	}
	// out's addition is sent before their removal (one user's changes go in order): kick them
	// out by hand in between, as if a first attempt's kick had gone through unanswered.
	if _, err := sender.SendDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	outID := "@" + matrixLocal(out.Email) + ":" + m.Addr()
	if got := m.Membership(room, outID); got != "invite" {
		t.Fatalf("membership after the first sends = %q, want invite", got)
	}
	m.SetMembership(room, outID, "leave")
	ds := webhooktest.Drain(t, sender.SendDue, s, team.ID)
	for _, d := range ds {
		if d.Status != store.WebhookStatusSuccess || d.Attempts != 1 || d.LastError != "" {
			t.Errorf("delivery %+v, want success at the first attempt", d)
		}
	}
	if m.Membership(room, "@"+matrixLocal(in.Email)+":"+m.Addr()) != "join" {
		t.Errorf("the member already in the room lost their membership")
	}
}

// Tchap rooms: the homeserver is "matrix." and the room's server name (not for i.tchap.gouv.fr),
// the token MATRIX_BOT_ACCESS_TOKEN, and with MATRIX_BASE_HOME_SERVER set, the user directory
// there says which id the user has; a user it does not know is invited on the room's server.
func TestMatrixWebhookTchap(t *testing.T) {
	s := storetest.Open(t)
	m := webhooktest.StartMatrixHomeserver(t, botToken, "matrix.agent.tchap.gouv.fr", "i.tchap.gouv.fr")
	port := m.Addr()[strings.LastIndex(m.Addr(), ":")+1:]
	dns := startDNS(t, func(int) []netip.Addr { return []netip.Addr{netip.MustParseAddr("127.0.0.1")} })
	agent, internet := "!agent:agent.tchap.gouv.fr:"+port, "!internet:i.tchap.gouv.fr:"+port
	m.AddRoom(agent, "", true)
	m.AddRoom(internet, "", true)
	team := storetest.TeamWithEveryRole(t, s)
	// No secret: a Tchap room's token is the bot's.
	webhooktest.MatrixHook(t, s, team.ID, "https://www.tchap.gouv.fr/#/room/"+agent, "")
	webhooktest.MatrixHook(t, s, team.ID, "https://www.tchap.gouv.fr/#/room/"+internet, "")
	sender := matrixSender(s, m, Options{MatrixBotToken: botToken, MatrixBaseHomeServer: "https://" + m.Addr() + "/"})
	sender.dial.resolver = dns.resolver()

	known := storetest.User(t, s, team.Org, storetest.WithEmail("jean.dupont-"+storetest.Unique()+"@example.test"))
	unknown := storetest.User(t, s, team.Org)
	found := "@" + matrixLocal(known.Email) + ":agent.tchap.gouv.fr"
	// The directory's search is by prefix: a longer id that starts with the same text comes
	// first, and is not the user's.
	m.AddDirectoryUser("@" + matrixLocal(known.Email) + ".other:agent.tchap.gouv.fr")
	m.AddDirectoryUser(found)
	storetest.Access(t, s, team.ID, known.ID, store.RoleMember)
	storetest.Access(t, s, team.ID, unknown.ID, store.RoleMember)
	for _, d := range webhooktest.Drain(t, sender.SendDue, s, team.ID) {
		if d.Status != store.WebhookStatusSuccess {
			t.Errorf("delivery %+v, want success", d)
		}
	}
	for room, wantHost := range map[string]string{agent: "matrix.agent.tchap.gouv.fr:" + port, internet: "i.tchap.gouv.fr:" + port} {
		if got := m.Membership(room, found); got != "invite" {
			t.Errorf("%s: the user the directory knows: membership %q, want invite", room, got)
		}
		server := strings.SplitN(room, ":", 2)[1]
		if got := m.Membership(room, "@"+matrixLocal(unknown.Email)+":"+server); got != "invite" {
			t.Errorf("%s: the user the directory does not know: membership %q, want invite on the room's server", room, got)
		}
		for _, r := range m.Requests() {
			if strings.Contains(r.Path, room) && r.Host != wantHost {
				t.Errorf("%s went to %s, want %s", r.Path, r.Host, wantHost)
			}
		}
	}
	searches := 0
	for _, r := range m.Requests() {
		if r.Authorization != "Bearer "+botToken {
			t.Errorf("%s: Authorization %q, want the bot's token", r.Path, r.Authorization)
		}
		if r.Path == "/_matrix/client/v3/user_directory/search" {
			searches++
			if r.Host != m.Addr() || !strings.HasPrefix(r.Body["search_term"].(string), "@") {
				t.Errorf("search %+v, want MATRIX_BASE_HOME_SERVER asked for @<email with - for @>", r)
			}
		}
	}
	if searches != 4 {
		t.Errorf("%d directory searches, want one per delivery (4)", searches)
	}
}

// A webhook's own secret goes to its room's homeserver only: with MATRIX_BASE_HOME_SERVER set,
// a room elsewhere searches its own homeserver's directory, not that one.
func TestMatrixWebhookSecretStaysWithItsHomeserver(t *testing.T) {
	s := storetest.Open(t)
	m := webhooktest.StartMatrixHomeserver(t, "room-secret")
	base := webhooktest.StartMatrixHomeserver(t, botToken)
	room := "!own:" + m.Addr()
	m.AddRoom(room, "", true)
	team := storetest.TeamWithEveryRole(t, s)
	webhooktest.MatrixHook(t, s, team.ID, "https://matrix.to/#/"+room, "room-secret")
	sender := matrixSender(s, m, Options{MatrixBotToken: botToken, MatrixBaseHomeServer: base.Server.URL})
	u := storetest.User(t, s, team.Org)
	storetest.Access(t, s, team.ID, u.ID, store.RoleMember)
	if ds := webhooktest.Drain(t, sender.SendDue, s, team.ID); ds[0].Status != store.WebhookStatusSuccess {
		t.Errorf("delivery %+v, want success", ds[0])
	}
	if got := base.Requests(); len(got) != 0 {
		t.Errorf("MATRIX_BASE_HOME_SERVER got %+v, want nothing", got)
	}
	if got := m.Paths(); len(got) != 3 || got[1] != "/_matrix/client/v3/user_directory/search" {
		t.Errorf("the room's homeserver got %v, want join, its directory's search, invite", got)
	}
}

// An alias names the room to join; the invitation goes to the room id the join answers.
func TestMatrixWebhookAlias(t *testing.T) {
	s := storetest.Open(t)
	m := webhooktest.StartMatrixHomeserver(t, botToken)
	room, alias := "!aliased:"+m.Addr(), "#équipe:"+m.Addr()
	m.AddRoom(room, alias, true)
	team := storetest.TeamWithEveryRole(t, s)
	webhooktest.MatrixHook(t, s, team.ID, alias, botToken) // a bare alias: stored as its matrix.to link
	sender := matrixSender(s, m, Options{})
	u := storetest.User(t, s, team.Org)
	storetest.Access(t, s, team.ID, u.ID, store.RoleMember)
	webhooktest.Drain(t, sender.SendDue, s, team.ID)
	want := []string{"/_matrix/client/v3/join/" + alias, "/_matrix/client/v3/rooms/" + room + "/invite"}
	if diff := cmp.Diff(want, m.Paths()); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
}

// Failures are retried through the outbox, each shown to staff as its class: a 5xx, a rate
// limit (after the wait the homeserver asks for), a token it refuses (until staff set the right
// one), a bot not invited to the room.
func TestMatrixWebhookFailuresRetried(t *testing.T) {
	s := storetest.Open(t)
	m := webhooktest.StartMatrixHomeserver(t, botToken)
	room := "!retry:" + m.Addr()
	m.AddRoom(room, "", true)
	team := storetest.TeamWithEveryRole(t, s)
	w := webhooktest.MatrixHook(t, s, team.ID, "https://matrix.to/#/"+room, "wrong-token")
	sender := matrixSender(s, m, Options{})
	sender.backoffCap = 2 * time.Hour
	u := storetest.User(t, s, team.Org)
	storetest.Access(t, s, team.ID, u.ID, store.RoleMember)
	mxid := "@" + matrixLocal(u.Email) + ":" + m.Addr()

	attempt := func(wantError string) {
		t.Helper()
		webhooktest.FastForward(t, s, team.ID)
		if _, err := sender.SendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		ws := webhooktest.WebhookOf(t, s, w)
		if ws.LastError != wantError || (wantError != "" && ws.Status != store.WebhookStatusPending) {
			t.Errorf("webhook %+v, want lastError %q", ws, wantError)
		}
	}
	attempt("Matrix join failed: HTTP 4xx (401) M_UNKNOWN_TOKEN")
	secret := botToken
	if _, err := s.UpdateTeamWebhook(t.Context(), w.ID, store.TeamWebhookUpdate{Secret: &secret}); err != nil {
		t.Fatal(err)
	}

	m.SetFault(func(_ int, path string) (int, string, bool) {
		if strings.HasSuffix(path, "/invite") {
			return http.StatusBadGateway, "<html>bad gateway</html>", true
		}
		return 0, "", false
	})
	attempt("Matrix invite failed: HTTP 5xx (502)")

	m.SetFault(func(_ int, path string) (int, string, bool) {
		if strings.Contains(path, "/join/") {
			return http.StatusTooManyRequests, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":90000}`, true
		}
		return 0, "", false
	})
	webhooktest.FastForward(t, s, team.ID)
	if _, err := sender.SendDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	var wait float64
	if err := s.DB().QueryRowContext(t.Context(), `SELECT extract(epoch FROM next_attempt_at - now()) FROM team_webhook_deliveries
		WHERE team_id = ? AND status = 'pending'`, team.ID).Scan(&wait); err != nil || wait < 80 || wait > 91 {
		t.Errorf("next attempt in %vs (%v), want the 90 s the homeserver asked for", wait, err)
	}
	if ws := webhooktest.WebhookOf(t, s, w); ws.LastError != "Matrix join rate limited: HTTP 429 M_LIMIT_EXCEEDED" {
		t.Errorf("lastError %q, want the rate limit", ws.LastError)
	}

	m.SetFault(nil)
	attempt("")
	if got := m.Membership(room, mxid); got != "invite" {
		t.Errorf("membership %q, want invite after the retries", got)
	}
	ds := webhooktest.Deliveries(t, s, team.ID)
	if len(ds) != 1 || ds[0].Status != store.WebhookStatusSuccess || ds[0].Attempts < 4 {
		t.Errorf("deliveries %+v, want one success after the failed attempts", ds)
	}

	// A bot that is not invited cannot join: staff read why.
	closed := "!closed:" + m.Addr()
	m.AddRoom(closed, "", false)
	w2 := webhooktest.MatrixHook(t, s, team.ID, "https://matrix.to/#/"+closed, botToken)
	storetest.Access(t, s, team.ID, storetest.User(t, s, team.Org).ID, store.RoleMember)
	if _, err := sender.SendDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ws := webhooktest.WebhookOf(t, s, w2); ws.Status != store.WebhookStatusPending || ws.LastError != "Matrix join failed: HTTP 4xx (403) M_FORBIDDEN" {
		t.Errorf("webhook of a room the bot is not in: %+v", ws)
	}
}

// What no request can fix is not sent: a webhook without a token waits for staff to set one,
// and a user without an email, who has no Matrix id, is given up at once.
func TestMatrixWebhookNotSent(t *testing.T) {
	s := storetest.Open(t)
	m := webhooktest.StartMatrixHomeserver(t, botToken)
	room := "!unsent:" + m.Addr()
	m.AddRoom(room, "", true)

	team := storetest.TeamWithEveryRole(t, s)
	w := webhooktest.MatrixHook(t, s, team.ID, "https://matrix.to/#/"+room, "")
	sender := matrixSender(s, m, Options{MatrixBotToken: botToken}) // the bot's token is for Tchap rooms only
	storetest.Access(t, s, team.ID, storetest.User(t, s, team.Org).ID, store.RoleMember)
	if _, err := sender.SendDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ws := webhooktest.WebhookOf(t, s, w); ws.Status != store.WebhookStatusPending ||
		ws.LastError != "no Matrix access token: set the webhook's secret (MATRIX_BOT_ACCESS_TOKEN for a Tchap room)" {
		t.Errorf("webhook without a token: %+v", ws)
	}

	other := storetest.TeamWithEveryRole(t, s)
	webhooktest.MatrixHook(t, s, other.ID, "https://matrix.to/#/"+room, botToken)
	storetest.Access(t, s, other.ID, storetest.User(t, s, other.Org, storetest.WithEmail("")).ID, store.RoleMember)
	ds := webhooktest.Drain(t, sender.SendDue, s, other.ID)
	if len(ds) != 1 || ds[0].Status != store.WebhookStatusFailure || ds[0].Attempts != 1 ||
		ds[0].LastError != "the user has no email, hence no Matrix id" {
		t.Errorf("deliveries %+v, want the one for a user without email given up at once", ds)
	}
	if got := m.Requests(); len(got) != 0 {
		t.Errorf("homeserver got %+v, want nothing", got)
	}
}

// A Matrix homeserver is a destination as any other: its certificate is verified, and private
// or local addresses are refused unless WEBHOOK_ALLOWED_NETWORKS names them.
func TestMatrixWebhookTransportSecurity(t *testing.T) {
	s := storetest.Open(t)
	m := webhooktest.StartMatrixHomeserver(t, botToken)
	room := "!guarded:" + m.Addr()
	m.AddRoom(room, "", true)
	for _, tt := range []struct {
		name, want string
		o          func(*Sender)
	}{
		{"refused destination", "Matrix join: refused destination: a private or local address (WEBHOOK_ALLOWED_NETWORKS)",
			func(w *Sender) { w.dial.allowed = nil }},
		{"unknown certificate", "Matrix join: TLS certificate refused",
			func(w *Sender) { w.client.Transport.(*http.Transport).TLSClientConfig.RootCAs = nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			team := storetest.TeamWithEveryRole(t, s)
			w := webhooktest.MatrixHook(t, s, team.ID, "https://matrix.to/#/"+room, botToken)
			sender := matrixSender(s, m, Options{})
			tt.o(sender)
			storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
			if _, err := sender.SendDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			if ws := webhooktest.WebhookOf(t, s, w); ws.Status != store.WebhookStatusPending || ws.LastError != tt.want {
				t.Errorf("webhook %+v, want pending with %q", ws, tt.want)
			}
		})
	}
	if got := m.Requests(); len(got) != 0 {
		t.Errorf("homeserver got %+v, want nothing", got)
	}
}
