package graph

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"lasuite.fr/people/graph/model"
	"lasuite.fr/people/store"
)

func (r *Resolver) config() *model.Config {
	c := &model.Config{Release: r.settings.Release, Commit: r.settings.Commit, Features: &model.Features{
		ContactsDisplay: r.settings.Features.ContactsDisplay, ContactsCreate: r.settings.Features.ContactsCreate,
		TeamsDisplay: r.settings.Features.TeamsDisplay, TeamsCreate: r.settings.Features.TeamsCreate,
	}}
	for _, l := range store.Languages {
		c.Languages = append(c.Languages, model.Language{Code: l.Code, Name: l.Name})
	}
	return c
}

// abilities is what the caller may do, as People's User.get_abilities (at its latest: teams are
// visible with the feature switch or to whoever manages a team), and what the API enforces.
func (r *Resolver) abilities(ctx context.Context, user uuid.UUID) (*model.UserAbilities, error) {
	f := r.settings.Features
	manages := false
	if !f.TeamsDisplay {
		var err error
		if manages, err = r.store.ManagesATeam(ctx, user); err != nil {
			return nil, fmt.Errorf("user abilities: %w", err)
		}
	}
	return &model.UserAbilities{
		Teams:    &model.Ability{CanView: f.TeamsDisplay || manages, CanCreate: f.TeamsCreate},
		Contacts: &model.Ability{CanView: f.ContactsDisplay, CanCreate: f.ContactsDisplay && f.ContactsCreate},
	}, nil
}

// ConfigOf is what the config query answers under settings, for People's /api/v1.0/config/,
// which answers the same in People's shape.
func ConfigOf(settings Settings) *model.Config { return (&Resolver{settings: settings}).config() }
