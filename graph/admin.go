package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/vikstrous/dataloadgen"

	"lasuite.fr/people/graph/model"
	"lasuite.fr/people/store"
)

// adminLoaders batch the nested fields of the staff types. Their store methods take the
// operation's proof that the caller is staff (asStaff).
type adminLoaders struct {
	organizations                *dataloadgen.Loader[uuid.UUID, *store.AdminOrganization]
	serviceProviders             *dataloadgen.Loader[uuid.UUID, *store.AdminServiceProvider]
	teams                        *dataloadgen.Loader[uuid.UUID, *store.Team]
	organizationAdministrators   *dataloadgen.Loader[uuid.UUID, []store.User]
	organizationServiceProviders *dataloadgen.Loader[uuid.UUID, []store.AdminServiceProvider]
	serviceProviderOrganizations *dataloadgen.Loader[uuid.UUID, []store.AdminOrganization]
	teamWebhooks                 *pageLoader[[]store.TeamWebhook]
	teamServiceProviders         *pageLoader[[]store.ServiceProvider] // all of them, whoever the caller came through
}

func newAdminLoaders(l *loaders) *adminLoaders {
	s, opt := l.store, dataloadgen.WithWait(l.wait)
	return &adminLoaders{
		organizations: dataloadgen.NewLoader(byID(asStaff(l, s.AdminOrganizationsByIDs),
			func(o store.AdminOrganization) uuid.UUID { return o.ID }, "organization"), opt),
		serviceProviders: dataloadgen.NewLoader(byID(asStaff(l, s.AdminServiceProvidersByIDs),
			func(sp store.AdminServiceProvider) uuid.UUID { return sp.ID }, "service provider"), opt),
		teams:                        dataloadgen.NewLoader(byID(asStaff(l, s.AdminTeamsByIDs), func(t store.Team) uuid.UUID { return t.ID }, "team"), opt),
		organizationAdministrators:   dataloadgen.NewLoader(byKey(asStaff(l, s.OrganizationAdministratorsByOrganizationIDs)), opt),
		organizationServiceProviders: dataloadgen.NewLoader(byKey(asStaff(l, s.ServiceProvidersByOrganizationIDs)), opt),
		serviceProviderOrganizations: dataloadgen.NewLoader(byKey(asStaff(l, s.OrganizationsByServiceProviderIDs)), opt),
		teamWebhooks:                 newPageLoader(&l.pages, asStaff(l, s.TeamWebhooks), l.wait),
		teamServiceProviders: newPageLoader(&l.pages, asStaff(l, func(ctx context.Context, _ store.StaffActor, ids []uuid.UUID) (map[uuid.UUID][]store.ServiceProvider, error) {
			return s.ServiceProvidersByTeamIDs(ctx, store.Actor{}, ids)
		}), l.wait),
	}
}

// adminTeamPage records a page of teams read by staff, as teamPage does.
func (l *loaders) adminTeamPage(ts []store.Team) {
	ids := make([]uuid.UUID, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	l.pages.add(ids)
}

// GraphQL's staff enums are the upper-case spelling of what the database stores, as roles.

func webhookProtocolIn(p *model.WebhookProtocol) *string {
	if p == nil {
		return nil
	}
	s := strings.ToLower(string(*p))
	return &s
}

func webhookProtocolOut(p string) model.WebhookProtocol {
	return model.WebhookProtocol(strings.ToUpper(p))
}

func webhookStatusOut(s string) model.WebhookStatus { return model.WebhookStatus(strings.ToUpper(s)) }

func auditMethodOut(m store.ActorMethod) model.AuditMethod {
	return model.AuditMethod(strings.ToUpper(string(m)))
}

// nonNilSlice is s, or an empty list for nil: a list field is never null.
func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// optionalUser loads a user that may be gone: an event outlives its actor.
func optionalUser(ctx context.Context, id *uuid.UUID) (*store.User, error) {
	if id == nil {
		return nil, nil
	}
	u, err := loadersFrom(ctx).users().Load(ctx, *id)
	if store.KindOf(err) == store.KindNotFound {
		return nil, nil
	}
	return u, err
}

// actorDeleted says whether an event's actor was a user who is gone: the audit trail keeps
// their id (it has no foreign keys), and the event shows it with no user behind it.
func actorDeleted(ctx context.Context, e *store.AuditEvent) (bool, error) {
	if e.ActorID == nil {
		return false, nil // the command line
	}
	_, err := loadersFrom(ctx).users().Load(ctx, *e.ActorID)
	if store.KindOf(err) == store.KindNotFound {
		return true, nil
	}
	return false, err
}

// userExport decodes the store's export into the JSONObject the API returns; numbers keep
// their text (json.Number), so that nothing is rounded on the way.
func userExport(doc []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("decode user export: %w", err)
	}
	return out, nil
}
