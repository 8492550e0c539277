package rest

import (
	"net/http"
	"strings"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
)

// msgNoTeam is People's 404 for a team the caller cannot see.
const msgNoTeam = "No Team matches the given query."

// teamJSON is People's partner team (core/api/resource_server/serializers.py): no parent id,
// accesses or services; the tree shows through depth, path and numchild.
type teamJSON struct {
	ID                   uuid.UUID `json:"id"`
	CreatedAt            string    `json:"created_at"`
	Depth                int       `json:"depth"`
	IsVisibleAllServices bool      `json:"is_visible_all_services"`
	Name                 string    `json:"name"`
	Numchild             int       `json:"numchild"`
	Path                 string    `json:"path"`
	UpdatedAt            string    `json:"updated_at"`
}

func teamOf(t store.TeamView) teamJSON {
	return teamJSON{
		ID: t.ID, CreatedAt: drfTime(t.CreatedAt), Depth: t.Depth, IsVisibleAllServices: t.IsVisibleAllServices,
		Name: t.Name, Numchild: t.Numchild, Path: t.Path, UpdatedAt: drfTime(t.UpdatedAt),
	}
}

// teamOrder reads ?ordering as DRF's OrderingFilter over created_at: the first term that names
// it decides, other terms are ignored, and the default is newest first.
func teamOrder(v string) store.TeamOrder {
	for term := range strings.SplitSeq(v, ",") {
		switch strings.TrimSpace(term) {
		case "created_at":
			return store.TeamOrderCreatedAsc
		case "-created_at":
			return store.TeamOrderCreatedDesc
		}
	}
	return store.TeamOrderCreatedDesc
}

// listTeams is GET teams/: the caller's teams seen by the calling service (those shared with
// it or with all services), and the shallower teams of their trees, as People's partner list.
func (h *Handler) listTeams(w http.ResponseWriter, r *http.Request, c caller) {
	f := store.TeamFilter{Order: teamOrder(r.URL.Query().Get("ordering")), IncludeAncestors: true}
	out, ok := list(h, w, r, msgNoTeam, func(p store.Page) (store.List[store.TeamView], error) {
		f.Page = p
		return h.store.Teams(r.Context(), c.actor, f)
	}, teamOf)
	if ok {
		writeJSON(w, http.StatusOK, "application/json", out)
	}
}

// createTeam is POST teams/: a root team of the caller's organization, owned by the caller,
// linked to the calling service only (store.CreateTeam decides all of it for a service's
// actor) and, unless the body says otherwise, visible to that service alone.
func (h *Handler) createTeam(w http.ResponseWriter, r *http.Request, c caller) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	fe := fieldErrors{}
	name, named := stringField(body, "name", fe)
	visible, _ := boolField(body, "is_visible_all_services", fe)
	if _, sent := body["name"]; !sent {
		fe["name"] = []string{msgRequired}
	}
	if len(fe) > 0 || !named {
		writeFieldErrors(w, fe)
		return
	}
	t, err := h.store.CreateTeam(r.Context(), c.actor, store.NewTeam{Name: name, IsVisibleAllServices: &visible})
	if err != nil {
		h.storeError(w, r, err, msgNoTeam)
		return
	}
	writeJSON(w, http.StatusCreated, "application/json", teamOf(*t))
}

// team is GET teams/{id}/.
func (h *Handler) team(w http.ResponseWriter, r *http.Request, c caller) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		respondError(w, r, http.StatusNotFound, msgNoTeam)
		return
	}
	t, err := h.store.TeamByID(r.Context(), c.actor, id)
	if err != nil {
		h.storeError(w, r, err, msgNoTeam)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", teamOf(*t))
}

// putTeam is PUT teams/{id}/: name is required, is_visible_all_services stays as it is when
// left out (as People's partner serializer has no default for it).
func (h *Handler) putTeam(w http.ResponseWriter, r *http.Request, c caller) {
	h.updateTeam(w, r, c, true)
}

// patchTeam is PATCH teams/{id}/: only the fields sent change.
func (h *Handler) patchTeam(w http.ResponseWriter, r *http.Request, c caller) {
	h.updateTeam(w, r, c, false)
}

// updateTeam renames a team or shares it with every service: direct owners and
// administrators only (store.UpdateTeam), 403 for a member or a viewer of an ancestor.
func (h *Handler) updateTeam(w http.ResponseWriter, r *http.Request, c caller, full bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		respondError(w, r, http.StatusNotFound, msgNoTeam)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	fe := fieldErrors{}
	var up store.TeamUpdate
	if name, set := stringField(body, "name", fe); set {
		up.Name = &name
	} else if _, sent := body["name"]; !sent && full {
		fe["name"] = []string{msgRequired}
	}
	if visible, set := boolField(body, "is_visible_all_services", fe); set {
		up.IsVisibleAllServices = &visible
	}
	if len(fe) > 0 {
		writeFieldErrors(w, fe)
		return
	}
	t, err := h.store.UpdateTeam(r.Context(), c.actor, id, up)
	if err != nil {
		h.storeError(w, r, err, msgNoTeam)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", teamOf(*t))
}
