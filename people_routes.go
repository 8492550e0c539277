package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/migrations"
	"lasuite.fr/people/store"
)

// mountPeopleRoutes answers People's URLs that are not the login's (auth.PeopleRoutes) nor the
// resource server's: the JWKS at its resource-server path, the load balancer's heartbeats, and
// the frontend's configuration (people-behaviour.md §1.6, §5, §6), so that a deployment's
// probes, partners and frontend keep working unchanged.
func mountPeopleRoutes(mux *http.ServeMux, cfg Config, settings graph.Settings, s *store.Store, rs *auth.ResourceServer, log *slog.Logger) {
	mux.Handle("GET /resource-server/v1.0/jwks", rs.JWKS())
	// Dockerflow's heartbeats, with or without their trailing slash, as People's. Liveness:
	// the process answers.
	lb := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	mux.HandleFunc("GET /__lbheartbeat__", lb)
	mux.HandleFunc("GET /__lbheartbeat__/{$}", lb)
	hb := func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, code := "ok", http.StatusOK
		if err := s.Ping(ctx); err != nil {
			log.WarnContext(ctx, "heartbeat", "err", err)
			status, code = "error", http.StatusInternalServerError
		} else if err := migrations.Check(ctx, s.DB().DB); err != nil {
			// People's "unapplied migrations" check is a warning, which still answers 200.
			log.WarnContext(ctx, "heartbeat", "err", err)
			status = "warning"
		}
		writeJSON(w, code, map[string]string{"status": status})
	}
	mux.HandleFunc("GET /__heartbeat__", hb)
	mux.HandleFunc("GET /__heartbeat__/{$}", hb)
	mux.HandleFunc("GET /api/v1.0/config/{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, peopleConfigJSON(settings, cfg.CrispWebsiteID))
	})
}

// peopleConfigJSON is People's /api/v1.0/config/ answer, with exactly its five keys, from the
// settings the GraphQL config query answers from.
func peopleConfigJSON(settings graph.Settings, crispWebsiteID string) map[string]any {
	c := graph.ConfigOf(settings)
	languages := [][2]string{}
	for _, l := range c.Languages {
		languages = append(languages, [2]string{l.Code, l.Name})
	}
	var crisp any // null when unset, as People's
	if crispWebsiteID != "" {
		crisp = crispWebsiteID
	}
	return map[string]any{
		"LANGUAGES": languages,
		"FEATURES": map[string]bool{
			"CONTACTS_CREATE": c.Features.ContactsCreate, "CONTACTS_DISPLAY": c.Features.ContactsDisplay,
			"MAILBOXES_CREATE": false, // no mailboxes here
			"TEAMS_DISPLAY":    c.Features.TeamsDisplay, "TEAMS_CREATE": c.Features.TeamsCreate,
		},
		"RELEASE":          c.Release,
		"COMMIT":           c.Commit,
		"CRISP_WEBSITE_ID": crisp,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
