// Package graph is the GraphQL layer: gqlgen's generated executor (generated.go, model/), the
// resolvers, per-request dataloaders and the translation of domain errors into
// extensions.code. It calls store for every query and never imports bun.
package graph

import (
	"log/slog"
	"regexp"

	"lasuite.fr/people/store"
)

// Features are the FEATURE_* switches, as People's config endpoint reports them.
type Features struct {
	ContactsDisplay, ContactsCreate, TeamsDisplay, TeamsCreate bool
}

// Settings is what the API needs from the server's configuration.
type Settings struct {
	Features Features
	Release  string
	Commit   string
	// RegistrationIDPattern is ORGANIZATION_REGISTRATION_ID_PATTERN, which staff's organization
	// edits follow as logins do; nil means SIRETs.
	RegistrationIDPattern *regexp.Regexp
}

// Resolver is the dependency root of every resolver.
type Resolver struct {
	store    *store.Store
	settings Settings
	log      *slog.Logger
}
