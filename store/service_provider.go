package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// ServiceProvider is a partner service (an OAuth client of the identity federation).
type ServiceProvider struct {
	bun.BaseModel `bun:"table:service_providers,alias:sp"`

	ID         uuid.UUID `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	CreatedAt  time.Time `bun:"created_at,nullzero,notnull,default:now()"`
	UpdatedAt  time.Time `bun:"updated_at,nullzero,notnull,default:now()"`
	Name       string    `bun:"name,notnull"`
	AudienceID string    `bun:"audience_id,notnull"`
}

// ServiceProviderFilter narrows ServiceProviders.
type ServiceProviderFilter struct {
	Search string // fragment of the name or exact audience id
	Page
}

type serviceProviderRow struct {
	ServiceProvider `bun:",extend"`
	Total
}

// ServiceProviders lists the service providers linked to the actor's organization, by name.
func (s *Store) ServiceProviders(ctx context.Context, actor uuid.UUID, f ServiceProviderFilter) (List[ServiceProvider], error) {
	if err := CheckPage(f.Page); err != nil {
		return List[ServiceProvider]{}, err
	}
	var rows []serviceProviderRow
	q := s.db.NewSelect().Model(&rows).ColumnExpr("sp.*, count(*) OVER () AS total_count").
		Where(`sp.id IN (SELECT osp.service_provider_id FROM organization_service_providers osp
			JOIN users u ON u.organization_id = osp.organization_id WHERE u.id = ?)`, actor)
	if term := searchTerm(f.Search); term != "" {
		q = q.Where("(search_key(sp.name) LIKE search_key(?) OR sp.audience_id = ?)", term, strings.ReplaceAll(f.Search, "\x00", ""))
	}
	if err := f.Page.window(q.OrderExpr("sp.name, sp.id")).Scan(ctx); err != nil {
		return List[ServiceProvider]{}, fromDB("select service providers", err)
	}
	return newList(f.Page, rows, func(r serviceProviderRow) ServiceProvider { return r.ServiceProvider }), nil
}

// ServiceProvidersByTeamIDs returns the service providers of each team, by name, for loaders.
// A partner service's actor sees only itself among them: which other services a team uses is
// none of its business, and the teams it sees for all services would otherwise name them all.
// A browser session, and staff (who pass the zero Actor), see every one.
func (s *Store) ServiceProvidersByTeamIDs(ctx context.Context, actor Actor, teamIDs []uuid.UUID) (map[uuid.UUID][]ServiceProvider, error) {
	var rows []struct {
		ServiceProvider `bun:",extend"`
		TeamID          uuid.UUID `bun:"team_id,scanonly"`
	}
	q := s.db.NewSelect().Model(&rows).ColumnExpr("sp.*, tsp.team_id").
		Join("JOIN team_service_providers tsp ON tsp.service_provider_id = sp.id").
		Where("tsp.team_id IN (?)", bun.List(teamIDs))
	if actor.viaService() {
		q = q.Where("sp.id = ?", actor.ServiceProviderID)
	}
	err := q.OrderExpr("sp.name, sp.id").Scan(ctx)
	if err != nil {
		return nil, fromDB("select team service providers", err)
	}
	out := make(map[uuid.UUID][]ServiceProvider, len(teamIDs))
	for _, r := range rows {
		out[r.TeamID] = append(out[r.TeamID], r.ServiceProvider)
	}
	return out, nil
}
