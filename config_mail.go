package main

// mailConfig is how invitation emails leave (package mail): SMTP, or the log when no host is
// set (development), as People's EMAIL_* settings.
type mailConfig struct {
	Host        string
	Port        int
	User        string
	Password    secret
	UseTLS      bool // STARTTLS (EMAIL_USE_TLS)
	From        string
	FrontendURL string // the link in invitations
}

// mail reads People's EMAIL_* settings and FRONTEND_URL (the link in invitations).
func (p *parser) mail(c Config) mailConfig {
	return mailConfig{
		Host:        p.str("EMAIL_HOST", ""),
		Port:        p.integer("EMAIL_PORT", 587, 1, 65535),
		User:        p.str("EMAIL_HOST_USER", ""),
		Password:    secret(p.getenv("EMAIL_HOST_PASSWORD")),
		UseTLS:      p.boolean("EMAIL_USE_TLS", true),
		From:        p.str("EMAIL_FROM", "from@example.com"),
		FrontendURL: p.str("FRONTEND_URL", c.PublicURL+"/"),
	}
}
