// Package mail sends the emails the store queues (invitations): it claims each message in the
// database, renders it in its recipient's language, and delivers it over SMTP, or prints it to
// the log when no host is set (development). Several server instances may each run a Sender.
//
// It imports store only: never main, graph, auth or the HTTP layer. Its settings come from
// main (People's EMAIL_* variables) as Options; it reads no environment.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"

	"lasuite.fr/people/store"
)

// Options say how invitation emails leave: SMTP, or the log when Host is empty (development),
// as People's EMAIL_* settings.
type Options struct {
	Host        string // EMAIL_HOST; empty: messages are printed to the log, not sent
	Port        int
	User        string
	Password    string
	UseTLS      bool // STARTTLS (EMAIL_USE_TLS)
	UseSSL      bool // TLS from the first byte, SMTPS (EMAIL_USE_SSL)
	From        string
	FrontendURL string // the link in invitations
}

// Sender sends the queued messages. Each message is claimed in the database before it is
// sent, so several server instances can run one each.
type Sender struct {
	cfg   Options
	store *store.Store
	log   *slog.Logger
	dial  func(ctx context.Context, addr string) (net.Conn, error)
	roots *x509.CertPool // the certificate authorities TLS trusts; nil: the system's
}

// New prepares a Sender of the messages queued in s; Run sends them.
func New(cfg Options, s *store.Store, log *slog.Logger) *Sender {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &Sender{cfg: cfg, store: s, log: log, dial: func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}}
}

// Run sends due messages every interval until ctx ends.
func (m *Sender) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := m.sendDue(ctx); err != nil && ctx.Err() == nil {
			m.log.ErrorContext(ctx, "mail queue", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sendDue sends what is due now and returns how many messages went out.
func (m *Sender) sendDue(ctx context.Context) (int, error) {
	ms, err := m.store.ClaimMail(ctx, 20)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, msg := range ms {
		if err := m.send(ctx, msg); err != nil {
			m.log.WarnContext(ctx, "mail not sent", "mail_id", msg.ID, "attempt", msg.Attempts, "err", err)
			if err := m.store.MailFailed(ctx, msg.ID, err.Error()); err != nil {
				return sent, err
			}
			continue
		}
		if err := m.store.MailSent(ctx, msg.ID); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}

func (m *Sender) send(ctx context.Context, msg store.Mail) error {
	subject, text, html, err := render(msg, m.cfg.FrontendURL)
	if err != nil {
		return err
	}
	body, err := compose(m.cfg.From, msg.Recipient, subject, text, html)
	if err != nil {
		return err
	}
	if m.cfg.Host == "" {
		m.log.InfoContext(ctx, "email (EMAIL_HOST unset: printed, not sent)", "mail_id", msg.ID, "message", string(body))
		return nil
	}
	return m.deliver(ctx, msg.Recipient, body)
}

// deliver speaks SMTP to the configured server: over TLS from the start or with STARTTLS when
// asked (certificates verified),
// AUTH only over TLS or to localhost (net/smtp refuses otherwise).
func (m *Sender) deliver(ctx context.Context, to string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr := net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port))
	conn, err := m.dial(ctx, addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if m.cfg.UseSSL {
		// net/smtp sees the *tls.Conn, and allows AUTH over it as over STARTTLS.
		conn = tls.Client(conn, &tls.Config{ServerName: m.cfg.Host, MinVersion: tls.VersionTLS12, RootCAs: m.roots})
	}
	c, err := smtp.NewClient(conn, m.cfg.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	if m.cfg.UseTLS {
		if err := c.StartTLS(&tls.Config{ServerName: m.cfg.Host, MinVersion: tls.VersionTLS12, RootCAs: m.roots}); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if m.cfg.User != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.User, m.cfg.Password, m.cfg.Host)); err != nil {
			return errors.New("smtp authentication failed")
		}
	}
	if err := c.Mail(addressOf(m.cfg.From)); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("smtp RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	return c.Quit()
}

func addressOf(from string) string {
	if a, err := netmail.ParseAddress(from); err == nil {
		return a.Address
	}
	return from
}

// compose builds a multipart/alternative message (text and HTML, quoted-printable).
func compose(from, to, subject, text, html string) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	id := make([]byte, 12)
	rand.Read(id)
	hdr := []string{
		"From: " + from,
		"To: " + to,
		"Subject: " + mime.QEncoding.Encode("utf-8", subject),
		"Date: " + time.Now().UTC().Format(time.RFC1123Z),
		"Message-ID: <" + hex.EncodeToString(id) + "@" + domainOf(addressOf(from)) + ">",
		"MIME-Version: 1.0",
		"Content-Type: multipart/alternative; boundary=" + mw.Boundary(),
	}
	for _, h := range hdr {
		if strings.ContainsAny(h, "\r\n") {
			return nil, errors.New("header with a line break")
		}
		buf.WriteString(h + "\r\n")
	}
	buf.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", text}, {"text/html", html}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		qw.Write([]byte(part.body))
		qw.Close()
	}
	mw.Close()
	return buf.Bytes(), nil
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}

// invitationTexts are the invitation email in each language; the role names are translated.
var invitationTexts = map[string]struct {
	Subject, Greeting, Body, Action, Footer string
	Roles                                   map[string]string
}{
	"en-us": {
		Subject:  "[La Suite] You have been invited to become a {{.Role}} of a group",
		Greeting: "Hello,",
		Body:     "{{.Issuer}} invites you to join the team “{{.Team}}” as {{.Role}}.",
		Action:   "Log in to accept",
		Footer:   "This invitation is valid for a limited time. If you did not expect it, you can ignore this email.",
		Roles:    map[string]string{"owner": "owner", "administrator": "administrator", "member": "member"},
	},
	"fr-fr": {
		Subject:  "[La Suite] Vous avez été invité(e) à devenir {{.Role}} d’un groupe",
		Greeting: "Bonjour,",
		Body:     "{{.Issuer}} vous invite à rejoindre l’équipe « {{.Team}} » en tant que {{.Role}}.",
		Action:   "Se connecter pour accepter",
		Footer:   "Cette invitation est valable pour une durée limitée. Si vous ne l’attendiez pas, vous pouvez ignorer ce message.",
		Roles:    map[string]string{"owner": "propriétaire", "administrator": "administrateur·rice", "member": "membre"},
	},
}

var (
	textMail = texttemplate.Must(texttemplate.New("text").Parse("{{.Greeting}}\n\n{{.Body}}\n\n{{.Action}}: {{.Link}}\n\n{{.Footer}}\n"))
	htmlMail = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html><html lang="{{.Lang}}"><body style="font-family: sans-serif">
<p>{{.Greeting}}</p><p>{{.Body}}</p><p><a href="{{.Link}}">{{.Action}}</a></p><p style="color:#666">{{.Footer}}</p></body></html>`))
)

// render returns the subject, text and HTML of a queued message in its language.
func render(msg store.Mail, frontendURL string) (subject, text, html string, err error) {
	if msg.Template != "invitation" {
		return "", "", "", fmt.Errorf("unknown mail template %q", msg.Template)
	}
	t, ok := invitationTexts[msg.Language]
	if !ok {
		t = invitationTexts["en-us"]
	}
	str := func(k string) string { s, _ := msg.Payload[k].(string); return mailField(s) }
	role := t.Roles[str("role")]
	vals := map[string]string{"Team": str("team_name"), "Role": role, "Issuer": str("issuer_name")}
	fill := func(s string) (string, error) {
		var b strings.Builder
		err := texttemplate.Must(texttemplate.New("").Parse(s)).Execute(&b, vals)
		return b.String(), err
	}
	if subject, err = fill(t.Subject); err != nil {
		return
	}
	body, err := fill(t.Body)
	if err != nil {
		return
	}
	data := map[string]string{"Lang": msg.Language, "Greeting": t.Greeting, "Body": body, "Action": t.Action,
		"Footer": t.Footer, "Link": frontendURL}
	var tb, hb bytes.Buffer
	if err = textMail.Execute(&tb, data); err != nil {
		return
	}
	if err = htmlMail.Execute(&hb, data); err != nil {
		return
	}
	return mailField(subject), tb.String(), hb.String(), nil
}

// mailFieldMax bounds, in characters, a name written into an email: the database's own bound
// for team and user names, which an email must not trust.
const mailFieldMax = 100

// mailField makes a name that users choose (a team's, the issuer's) safe to write on one line
// of an email: control characters (CR and LF among them: no header or line of its own) and the
// bidirectional and invisible formatting characters that make a text read otherwise than it is
// become spaces, runs of spaces one, and a name longer than mailFieldMax is cut with an
// ellipsis. HTML escaping is html/template's, in the HTML part.
func mailField(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	}), " ")
	if r := []rune(s); len(r) > mailFieldMax {
		s = strings.TrimSpace(string(r[:mailFieldMax-1])) + "…"
	}
	return s
}
