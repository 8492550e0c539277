package rest

import (
	"net/http"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/wire"
)

// scimUser is SCIM's User resource as People's /scim/Me/ writes it.
type scimUser struct {
	Schemas     []string    `json:"schemas"`
	ID          uuid.UUID   `json:"id"`
	Active      bool        `json:"active"`
	UserName    string      `json:"userName"`
	DisplayName *string     `json:"displayName"`
	Emails      []scimEmail `json:"emails"`
	Groups      []scimGroup `json:"groups"`
	Meta        scimMeta    `json:"meta"`
}

type scimEmail struct {
	Value   string `json:"value"`
	Primary bool   `json:"primary"`
	Type    string `json:"type"`
}

// scimGroup is a team the user is in. Its value is the team's external id, which partners
// keep, never its id.
type scimGroup struct {
	Value   uuid.UUID `json:"value"`
	Display string    `json:"display"`
	Type    string    `json:"type"`
}

type scimMeta struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
	Location     string `json:"location"`
}

// scimMe is GET scim/Me/: the caller, and as groups the teams they are directly in that the
// calling service sees (linked to it or visible to all services). The teams above theirs in
// the tree, which the team list shows, are not groups of theirs: the store's own teams only
// (TeamFilter.IncludeAncestors false).
func (h *Handler) scimMe(w http.ResponseWriter, r *http.Request, c caller) {
	u, err := h.store.UserByID(r.Context(), c.UserID)
	if err != nil {
		h.storeError(w, r, err, "Not found.")
		return
	}
	groups := []scimGroup{}
	for p := (store.Page{Limit: store.MaxPageSize}); ; p.Offset += p.Limit {
		l, err := h.store.Teams(r.Context(), c.actor, store.TeamFilter{Page: p})
		if err != nil {
			h.storeError(w, r, err, "Not found.")
			return
		}
		for _, t := range l.Items {
			groups = append(groups, scimGroup{Value: t.ExternalID, Display: t.Name, Type: "direct"})
		}
		if !l.HasNext {
			break
		}
	}
	me := scimUser{
		Schemas: []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		ID:      u.ID, Active: u.IsActive, UserName: u.Sub, Emails: []scimEmail{}, Groups: groups,
		Meta: scimMeta{ResourceType: "User", Created: isoTime(u.CreatedAt, "+00:00"), LastModified: isoTime(u.UpdatedAt, "+00:00"),
			Location: h.opts.PublicURL + wire.SCIMPrefix + "Me/"},
	}
	if u.Name != "" {
		me.DisplayName = &u.Name
	}
	if u.Email != "" {
		me.Emails = []scimEmail{{Value: u.Email, Primary: true, Type: "work"}}
	}
	writeJSON(w, http.StatusOK, wire.SCIMContentType, me)
}
