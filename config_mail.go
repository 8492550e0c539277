package main

// mailConfig is how invitation emails leave (package mail): SMTP, or the log when no host is
// set (development), as People's EMAIL_* settings.
type mailConfig struct {
	Host        string
	Port        int
	User        string
	Password    secret
	UseTLS      bool // STARTTLS (EMAIL_USE_TLS)
	UseSSL      bool // TLS from the first byte, SMTPS (EMAIL_USE_SSL)
	From        string
	FrontendURL string // the link in invitations
}

// mail reads People's EMAIL_* settings and FRONTEND_URL (the link in invitations).
// EMAIL_USE_SSL is TLS from the first byte (port 465 unless EMAIL_PORT says otherwise), as
// Django's; with it, STARTTLS is off unless asked for, and asking for both is refused, as
// Django refuses it.
func (p *parser) mail(c Config) mailConfig {
	m := mailConfig{
		Host:        p.str("EMAIL_HOST", ""),
		User:        p.str("EMAIL_HOST_USER", ""),
		Password:    secret(p.getenv("EMAIL_HOST_PASSWORD")),
		UseSSL:      p.boolean("EMAIL_USE_SSL", false),
		From:        p.str("EMAIL_FROM", "from@example.com"),
		FrontendURL: p.str("FRONTEND_URL", c.PublicURL+"/"),
	}
	m.UseTLS = p.boolean("EMAIL_USE_TLS", !m.UseSSL)
	port := 587
	if m.UseSSL {
		port = 465
		if m.UseTLS {
			p.errs = append(p.errs, "EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive: STARTTLS or TLS from the start, not both")
		}
	}
	m.Port = p.integer("EMAIL_PORT", port, 1, 65535)
	return m
}
