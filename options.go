package main

import (
	"lasuite.fr/people/mail"
	"lasuite.fr/people/webhook"
)

// The packages that main assembles take plain option structs and never see Config or its
// secrets: these hand each one the part of the configuration it needs.

// mailOptions are the invitation emails' settings (EMAIL_*, FRONTEND_URL).
func mailOptions(c mailConfig) mail.Options {
	return mail.Options{Host: c.Host, Port: c.Port, User: c.User, Password: c.Password.reveal(), UseTLS: c.UseTLS,
		From: c.From, FrontendURL: c.FrontendURL}
}

// webhookOptions are the team webhooks' delivery settings (WEBHOOK_*); receivers' certificates
// are verified against the system's pool. SecretKeys go to the store, not to the sender.
func webhookOptions(c webhookConfig) webhook.Options {
	return webhook.Options{MaxAge: c.MaxAge, AllowHTTP: c.AllowHTTP, Retention: c.Retention, AllowedNetworks: c.AllowedNetworks}
}
