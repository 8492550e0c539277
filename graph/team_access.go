package graph

import (
	"context"
	"fmt"

	"lasuite.fr/people/store"
)

// withUser gives an access that a mutation wrote its user, when the payload selects
// access.user. TeamAccess.user is bound to the access's joined user, not a resolver: a resolver
// runs in a goroutine of its own for every access of every team page, while the lists join the
// user anyway. Only the mutations' accesses come without it, and they load it here through the
// request's user loader, as the resolver did.
func withUser(ctx context.Context, a *store.TeamAccessView) (*store.TeamAccessView, error) {
	if a == nil || a.User != nil || !selects(ctx, "access", "user") {
		return a, nil
	}
	u, err := loadersFrom(ctx).users().Load(ctx, a.UserID)
	if err != nil {
		return nil, fmt.Errorf("team access user: %w", err)
	}
	a.User = u
	return a, nil
}
