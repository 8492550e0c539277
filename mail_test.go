package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
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
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
	rcpt []string
	fail bool // answer 550 to RCPT
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln}
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
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) { io.WriteString(c, line+"\r\n") }
	say("220 test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 test")
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
	m, err := mail.ReadMessage(strings.NewReader(raw))
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
	m := newMailer(mailConfig{Host: "127.0.0.1", Port: srv.port(), From: "La Suite <noreply@example.test>", FrontendURL: "https://people.example.test/"},
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
		dev := newMailer(mailConfig{From: "noreply@example.test", FrontendURL: "http://localhost:8071/"}, s, slog.New(slog.NewTextHandler(&logs, nil)))
		invite(t, s, "fr-fr", "Équipe Log")
		if n, err := dev.sendDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("sendDue() = %d, %v", n, err)
		}
		if !strings.Contains(logs.String(), "printed, not sent") {
			t.Errorf("log = %s", logs.String())
		}
	})
}
