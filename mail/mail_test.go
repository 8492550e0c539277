package mail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http/httptest"
	netmail "net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// smtpServer is a minimal in-process SMTP server that records what it receives.
type smtpServer struct {
	ln  net.Listener
	tls *tls.Config // offers STARTTLS when set
	// implicit speaks TLS (with tls) from the first byte, as SMTPS on port 465.
	implicit bool
	mu       sync.Mutex
	msgs     []string
	rcpt     []string
	auth     []smtpAuth
	fail     bool // answer 550 to RCPT
}

// smtpAuth is an AUTH PLAIN the server received.
type smtpAuth struct {
	user, password string
	overTLS        bool
}

// startSMTP starts a server; configure, when given, sets it up before it accepts.
func startSMTP(t *testing.T, configure ...func(*smtpServer)) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln}
	for _, f := range configure {
		f(s)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer func() { c.Close() }()
	r := bufio.NewReader(c)
	overTLS := false
	if s.implicit {
		tc := tls.Server(c, s.tls)
		if tc.Handshake() != nil {
			return
		}
		c, r, overTLS = tc, bufio.NewReader(tc), true
	}
	say := func(line string) { io.WriteString(c, line+"\r\n") }
	say("220 test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO") && s.tls != nil && !overTLS:
			say("250-test")
			say("250 STARTTLS")
		case strings.HasPrefix(cmd, "EHLO") && overTLS:
			say("250-test")
			say("250 AUTH PLAIN")
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 test")
		case cmd == "STARTTLS" && s.tls != nil && !overTLS:
			say("220 go ahead")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			c, r, overTLS = tc, bufio.NewReader(tc), true
		case strings.HasPrefix(cmd, "AUTH PLAIN"):
			// AUTH PLAIN <base64 of "\x00user\x00password">
			b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(line[len("AUTH PLAIN"):]))
			f := strings.Split(string(b), "\x00")
			s.mu.Lock()
			if len(f) == 3 {
				s.auth = append(s.auth, smtpAuth{f[1], f[2], overTLS})
			}
			s.mu.Unlock()
			say("235 ok")
		case strings.HasPrefix(cmd, "MAIL FROM"):
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO"):
			s.mu.Lock()
			fail := s.fail
			if !fail {
				s.rcpt = append(s.rcpt, strings.TrimSpace(line[len("RCPT TO:"):]))
			}
			s.mu.Unlock()
			if fail {
				say("550 no such user")
			} else {
				say("250 ok")
			}
		case cmd == "DATA":
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, b.String())
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func (s *smtpServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// decoded returns the message's subject and its text and HTML parts, decoded.
func decoded(t *testing.T, raw string) (subject, text, html string) {
	t.Helper()
	m, err := netmail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(quotedprintable.NewReader(p))
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			html = string(b)
		} else {
			text = string(b)
		}
	}
	return subject, text, html
}

// invite creates a team owned by a user speaking lang and invites an email, which queues one
// message; it returns the invitation id and the invited address.
func invite(t *testing.T, s *store.Store, lang, team string) (uuid.UUID, string) {
	t.Helper()
	org := storetest.Organization(t, s)
	owner := storetest.User(t, s, org, storetest.WithName("Alice Martin"))
	storetest.MustExec(t, s.DB(), "UPDATE users SET language = ? WHERE id = ?", lang, owner.ID)
	teamID := storetest.Team(t, s, org, team)
	storetest.Access(t, s, teamID, owner.ID, store.RoleOwner)
	email := "invitee-" + storetest.Unique() + "@example.test"
	inv, err := s.CreateInvitation(t.Context(), store.UserActor(owner.ID), store.NewInvitation{TeamID: teamID, Email: email, Role: store.RoleAdministrator})
	if err != nil {
		t.Fatal(err)
	}
	return inv.ID, email
}

// The mail tests share the package database's queue, so they run one after the other.
func TestInvitationEmails(t *testing.T) {
	s := storetest.Open(t)
	srv := startSMTP(t)
	m := New(Options{Host: "127.0.0.1", Port: srv.port(), From: "La Suite <noreply@example.test>", FrontendURL: "https://people.example.test/"},
		s, slog.New(slog.DiscardHandler))

	for _, tc := range []struct{ lang, subject, body, role string }{
		{"en-us", "You have been invited to become a administrator of a group", "invites you to join the team “Équipe <b>Été</b>”", "administrator"},
		{"fr-fr", "Vous avez été invité(e) à devenir administrateur·rice d’un groupe", "vous invite à rejoindre l’équipe « Équipe <b>Été</b> »", "administrateur"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			invID, email := invite(t, s, tc.lang, "Équipe <b>Été</b>")
			n, err := m.sendDue(t.Context())
			if err != nil || n != 1 {
				t.Fatalf("sendDue() = %d, %v; want 1 message", n, err)
			}
			srv.mu.Lock()
			raw, rcpt := srv.msgs[len(srv.msgs)-1], srv.rcpt[len(srv.rcpt)-1]
			srv.mu.Unlock()
			if rcpt != "<"+email+">" {
				t.Errorf("RCPT TO %s, want <%s>", rcpt, email)
			}
			subject, text, html := decoded(t, raw)
			if !strings.Contains(subject, tc.subject) {
				t.Errorf("subject %q, want it to contain %q", subject, tc.subject)
			}
			if !strings.Contains(text, tc.body) || !strings.Contains(text, "Alice Martin") || !strings.Contains(text, "https://people.example.test/") {
				t.Errorf("text part lacks the team, issuer or link:\n%s", text)
			}
			if strings.Contains(html, "<b>Été</b>") || !strings.Contains(html, "&lt;b&gt;Été&lt;/b&gt;") || !strings.Contains(html, tc.role) {
				t.Errorf("HTML part must carry the role and escape the team name:\n%s", html)
			}
			var sentAt *time.Time
			if err := s.DB().QueryRowContext(t.Context(), "SELECT email_sent_at FROM invitations WHERE id = ?", invID).Scan(&sentAt); err != nil || sentAt == nil {
				t.Errorf("email_sent_at = %v (%v), want set", sentAt, err)
			}
			if n, err := m.sendDue(t.Context()); err != nil || n != 0 {
				t.Errorf("second sendDue() = %d, %v; a message is sent once", n, err)
			}
		})
	}

	t.Run("failure is recorded and the invitation kept", func(t *testing.T) {
		srv.mu.Lock()
		srv.fail = true
		srv.mu.Unlock()
		defer func() { srv.mu.Lock(); srv.fail = false; srv.mu.Unlock() }()
		invID, _ := invite(t, s, "en-us", "Team "+storetest.Unique())
		if n, err := m.sendDue(t.Context()); err != nil || n != 0 {
			t.Fatalf("sendDue() = %d, %v; want 0 sent, no error", n, err)
		}
		var sentAt *time.Time
		var lastErr string
		var attempts int
		err := s.DB().QueryRowContext(t.Context(), `SELECT i.email_sent_at, q.last_error, q.attempts FROM invitations i
			JOIN mail_queue q ON q.invitation_id = i.id WHERE i.id = ?`, invID).Scan(&sentAt, &lastErr, &attempts)
		if err != nil {
			t.Fatalf("the invitation or its queued mail is gone: %v", err)
		}
		if sentAt != nil || !strings.Contains(lastErr, "550") || attempts != 1 {
			t.Errorf("email_sent_at %v, last_error %q, attempts %d; want nil, the 550, 1", sentAt, lastErr, attempts)
		}
		// Not retried before its backoff is over.
		if n, _ := m.sendDue(t.Context()); n != 0 {
			t.Errorf("retried at once: %d sent", n)
		}
	})

	t.Run("without EMAIL_HOST the message goes to the log", func(t *testing.T) {
		var logs strings.Builder
		dev := New(Options{From: "noreply@example.test", FrontendURL: "http://localhost:8071/"}, s, slog.New(slog.NewTextHandler(&logs, nil)))
		invite(t, s, "fr-fr", "Équipe Log")
		if n, err := dev.sendDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("sendDue() = %d, %v", n, err)
		}
		if !strings.Contains(logs.String(), "printed, not sent") {
			t.Errorf("log = %s", logs.String())
		}
	})
}

// delivered returns the messages the server received for recipient.
func (s *smtpServer) delivered(recipient string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for i, r := range s.rcpt {
		if r == "<"+recipient+">" && i < len(s.msgs) {
			out = append(out, s.msgs[i])
		}
	}
	return out
}

// EMAIL_USE_TLS (the default) sends over STARTTLS with the server's certificate verified, and
// logs in (EMAIL_HOST_USER, EMAIL_HOST_PASSWORD) only once the connection is encrypted. A
// certificate the mailer does not trust, or a server without STARTTLS, is a failed send: logged,
// recorded, nothing sent in clear, the invitation kept.
func TestInvitationEmailsOverTLS(t *testing.T) {
	s := storetest.Open(t)
	certs := httptest.NewUnstartedServer(nil) // a certificate for 127.0.0.1, and its authority
	certs.StartTLS()
	defer certs.Close()
	trusted := x509.NewCertPool()
	trusted.AddCert(certs.Certificate())
	srv := startSMTP(t)
	srv.tls = &tls.Config{Certificates: certs.TLS.Certificates}
	plain := startSMTP(t)
	cfg := Options{Host: "127.0.0.1", UseTLS: true, User: "people-mailer", Password: "smtp-password-1",
		From: "noreply@example.test", FrontendURL: "https://people.example.test/"}
	mailer := func(port int, roots *x509.CertPool, logs io.Writer) *Sender {
		c := cfg
		c.Port = port
		m := New(c, s, slog.New(slog.NewTextHandler(logs, nil)))
		m.roots = roots
		return m
	}
	sentAt := func(t *testing.T, inv uuid.UUID) *time.Time {
		t.Helper()
		var at *time.Time
		if err := s.DB().QueryRowContext(t.Context(), "SELECT email_sent_at FROM invitations WHERE id = ?", inv).Scan(&at); err != nil {
			t.Fatalf("the invitation is gone: %v", err)
		}
		return at
	}

	t.Run("STARTTLS, then AUTH", func(t *testing.T) {
		inv, email := invite(t, s, "en-us", "Team "+storetest.Unique())
		if _, err := mailer(srv.port(), trusted, io.Discard).sendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := srv.delivered(email); len(got) != 1 || sentAt(t, inv) == nil {
			t.Fatalf("%d messages for %s, email_sent_at %v; want 1, set", len(got), email, sentAt(t, inv))
		}
		srv.mu.Lock()
		auth := slices.Clone(srv.auth)
		srv.mu.Unlock()
		if len(auth) == 0 || auth[len(auth)-1] != (smtpAuth{"people-mailer", "smtp-password-1", true}) {
			t.Errorf("AUTH = %+v, want the configured login over TLS", auth)
		}
	})

	t.Run("TLS from the start (EMAIL_USE_SSL), then AUTH", func(t *testing.T) {
		smtps := startSMTP(t, func(s *smtpServer) {
			s.tls, s.implicit = &tls.Config{Certificates: certs.TLS.Certificates}, true
		})
		c := cfg
		c.Port, c.UseTLS, c.UseSSL = smtps.port(), false, true
		m := New(c, s, slog.New(slog.DiscardHandler))
		m.roots = trusted
		inv, email := invite(t, s, "en-us", "Team "+storetest.Unique())
		if _, err := m.sendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := smtps.delivered(email); len(got) != 1 || sentAt(t, inv) == nil {
			t.Fatalf("%d messages for %s, email_sent_at %v; want 1, set", len(got), email, sentAt(t, inv))
		}
		smtps.mu.Lock()
		defer smtps.mu.Unlock()
		if len(smtps.auth) != 1 || smtps.auth[0] != (smtpAuth{"people-mailer", "smtp-password-1", true}) {
			t.Errorf("AUTH = %+v, want the configured login over TLS", smtps.auth)
		}
	})

	for name, tc := range map[string]struct {
		port  func() int
		roots *x509.CertPool
		cause string
	}{
		"certificate not trusted": {srv.port, nil, "certificate"},
		"no STARTTLS offered":     {plain.port, trusted, "STARTTLS"},
	} {
		t.Run(name, func(t *testing.T) {
			srv.mu.Lock()
			srv.auth = nil
			srv.mu.Unlock()
			inv, email := invite(t, s, "fr-fr", "Équipe "+storetest.Unique())
			var logs strings.Builder
			if _, err := mailer(tc.port(), tc.roots, &logs).sendDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := append(srv.delivered(email), plain.delivered(email)...); len(got) != 0 || sentAt(t, inv) != nil {
				t.Errorf("%d messages for %s, email_sent_at %v; want none", len(got), email, sentAt(t, inv))
			}
			var lastErr string
			if err := s.DB().QueryRowContext(t.Context(), "SELECT last_error FROM mail_queue WHERE invitation_id = ?", inv).Scan(&lastErr); err != nil ||
				!strings.Contains(strings.ToLower(lastErr), strings.ToLower(tc.cause)) {
				t.Errorf("last_error %q (%v), want it to name the %s", lastErr, err, tc.cause)
			}
			if !strings.Contains(logs.String(), "mail not sent") {
				t.Errorf("the failure was not logged: %s", logs.String())
			}
			if strings.Contains(logs.String(), "smtp-password-1") {
				t.Errorf("the SMTP password reached the logs: %s", logs.String())
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			plain.mu.Lock()
			defer plain.mu.Unlock()
			if len(srv.auth)+len(plain.auth) != 0 {
				t.Errorf("AUTH sent: %+v %+v", srv.auth, plain.auth)
			}
		})
	}
}

// TestInvitationEmailNames: the names written into an invitation email (the team's, the
// issuer's) cannot add lines or headers, hide behind bidirectional controls, or run long: they
// are one line of at most 100 characters, and HTML-escaped in the HTML part.
func TestInvitationEmailNames(t *testing.T) {
	team := "Evil\r\nBcc: victim@example.test\r\n\r\n<script>alert(1)</script>\u202Egnp.exe\u200B\t" + strings.Repeat("x", 300)
	issuer := "Mallory\nSubject: urgent\x00"
	for _, lang := range []string{"en-us", "fr-fr"} {
		msg := store.Mail{Template: "invitation", Recipient: "invitee@example.test", Language: lang,
			Payload: map[string]any{"team_name": team, "role": "member", "issuer_name": issuer}}
		subject, text, html, err := render(msg, "https://people.example.test/")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := compose("noreply@example.test", msg.Recipient, subject, text, html)
		if err != nil {
			t.Fatal(err)
		}
		m, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Header["Bcc"]) > 0 || len(m.Header["Subject"]) != 1 {
			t.Errorf("%s: headers %v, want no Bcc and one Subject", lang, m.Header)
		}
		_, text, html = decoded(t, string(raw))
		var line string
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, "Mallory") {
				line = l
			}
		}
		want := "Evil Bcc: victim@example.test <script>alert(1)</script> gnp.exe " + strings.Repeat("x", 100-len("Evil Bcc: victim@example.test <script>alert(1)</script> gnp.exe ")-1) + "…"
		if !strings.Contains(line, want) || !strings.Contains(line, "Mallory Subject: urgent") {
			t.Errorf("%s: the text's invitation line is %q, want the team's name as %q and the issuer's on one line", lang, line, want)
		}
		if strings.ContainsAny(text+html, "\u202E\u200B\x00") || strings.Contains(text, "\nBcc") {
			t.Errorf("%s: control or formatting characters kept:\n%s", lang, text)
		}
		if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the HTML part does not escape the team's name:\n%s", lang, html)
		}
	}
}
