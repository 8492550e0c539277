package rest

import (
	"net/http"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
)

// msgNoInvitation is People's 404 for an invitation the caller cannot see.
const msgNoInvitation = "No Invitation matches the given query."

// invitationJSON is People's partner invitation.
type invitationJSON struct {
	ID        uuid.UUID  `json:"id"`
	CreatedAt string     `json:"created_at"`
	Email     string     `json:"email"`
	Team      uuid.UUID  `json:"team"`
	Role      store.Role `json:"role"`
	Issuer    uuid.UUID  `json:"issuer"`
	IsExpired bool       `json:"is_expired"`
}

func invitationOf(i store.Invitation) invitationJSON {
	return invitationJSON{ID: i.ID, CreatedAt: drfTime(i.CreatedAt), Email: i.Email, Team: i.TeamID, Role: i.Role,
		Issuer: i.IssuerID, IsExpired: i.IsExpired()}
}

// invitationActor is the caller as People's invitation views see teams: only those linked to
// the calling service count, a team visible to all services does not (people-behaviour.md
// §1.5). The store applies it in its visibility clause, for reads and writes alike.
func (c caller) invitationActor() store.Actor {
	a := c.actor
	a.LinkedOnly = true
	return a
}

// listInvitations is GET teams/{team_id}/invitations/: newest first, for a direct member of a
// team linked to the calling service; anyone else gets an empty list, not an error.
func (h *Handler) listInvitations(w http.ResponseWriter, r *http.Request, c caller) {
	teamID := uuid.MustParse(r.PathValue("team_id")) // checked by Mount
	out, ok := list(h, w, r, msgNoInvitation, func(p store.Page) (store.List[store.Invitation], error) {
		pages, err := h.store.InvitationsByTeamIDs(r.Context(), c.invitationActor(), []uuid.UUID{teamID}, p)
		l, found := pages[teamID]
		if !found {
			l = store.List[store.Invitation]{Items: []store.Invitation{}, Offset: p.Offset}
		}
		return l, err
	}, invitationOf)
	if ok {
		writeJSON(w, http.StatusOK, "application/json", out)
	}
}

// createInvitation is POST teams/{team_id}/invitations/: the store's CreateInvitation, which
// lets owners and administrators invite (only owners invite owners) and queues the email.
func (h *Handler) createInvitation(w http.ResponseWriter, r *http.Request, c caller) {
	teamID := uuid.MustParse(r.PathValue("team_id"))
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	fe := fieldErrors{}
	email, _ := stringField(body, "email", fe)
	if _, sent := body["email"]; !sent {
		fe["email"] = []string{msgRequired}
	}
	role := store.RoleMember
	if v, set := stringField(body, "role", fe); set {
		if role = store.Role(v); !role.Valid() {
			fe["role"] = []string{`"` + v + `" is not a valid choice.`}
		}
	}
	if len(fe) > 0 {
		writeFieldErrors(w, fe)
		return
	}
	inv, err := h.store.CreateInvitation(r.Context(), c.invitationActor(), store.NewInvitation{TeamID: teamID, Email: email, Role: role})
	if store.KindOf(err) == store.KindNotFound {
		// A team the caller cannot see through this service: absent, not theirs, or not
		// linked to the service. People words the last case so, and the answer tells nothing
		// of which it is.
		writeFieldErrors(w, fieldErrors{"team": {"Team not found."}})
		return
	} else if err != nil {
		h.storeError(w, r, err, msgNoInvitation)
		return
	}
	writeJSON(w, http.StatusCreated, "application/json", invitationOf(*inv))
}

// teamInvitation reads the invitation of the path, in the team of the path, as the caller's
// invitation views see it; it answers 404 itself and returns nil when there is none. An
// invitation never changes teams (invitations cannot be edited), so a withdrawal that follows
// this read withdraws an invitation of the path's team.
func (h *Handler) teamInvitation(w http.ResponseWriter, r *http.Request, c caller) *store.Invitation {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		respondError(w, r, http.StatusNotFound, msgNoInvitation)
		return nil
	}
	inv, err := h.store.InvitationByID(r.Context(), c.invitationActor(), uuid.MustParse(r.PathValue("team_id")), id)
	if err != nil {
		h.storeError(w, r, err, msgNoInvitation)
		return nil
	}
	return inv
}

// invitation is GET teams/{team_id}/invitations/{id}/: any direct member.
func (h *Handler) invitation(w http.ResponseWriter, r *http.Request, c caller) {
	if inv := h.teamInvitation(w, r, c); inv != nil {
		writeJSON(w, http.StatusOK, "application/json", invitationOf(*inv))
	}
}

// deleteInvitation is DELETE teams/{team_id}/invitations/{id}/: direct owners and
// administrators (store.DeleteInvitation), 403 for a member.
func (h *Handler) deleteInvitation(w http.ResponseWriter, r *http.Request, c caller) {
	inv := h.teamInvitation(w, r, c)
	if inv == nil {
		return
	}
	if err := h.store.DeleteInvitation(r.Context(), c.invitationActor(), inv.ID); err != nil {
		h.storeError(w, r, err, msgNoInvitation)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
