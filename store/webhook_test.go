package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func TestTeamWebhookValidation(t *testing.T) {
	s := storetest.Open(t)
	dev := store.New(s.DB(), store.Options{WebhookAllowHTTP: true})
	team := storetest.Team(t, s, uuid.Nil, "Hooks "+storetest.Unique())
	long := "https://receiver.example.test/" + strings.Repeat("a", 2048)
	tests := []struct {
		name  string
		s     *store.Store
		in    store.NewTeamWebhook
		want  store.Kind
		field string
	}{
		{"https", s, store.NewTeamWebhook{URL: "https://receiver.example.test/scim/v2/Groups/1"}, 0, ""},
		{"https with port, query and secret", s, store.NewTeamWebhook{URL: "https://127.0.0.1:8443/hook?team=1", Secret: "s3cr3t-TOKEN_~+/="}, 0, ""},
		{"http refused", s, store.NewTeamWebhook{URL: "http://receiver.example.test/"}, store.KindInvalid, "url"},
		{"http allowed by WEBHOOK_ALLOW_HTTP", dev, store.NewTeamWebhook{URL: "http://127.0.0.1:9/"}, 0, ""},
		{"blank", s, store.NewTeamWebhook{URL: "  "}, store.KindInvalid, "url"},
		{"relative", s, store.NewTeamWebhook{URL: "/scim"}, store.KindInvalid, "url"},
		{"other scheme", s, store.NewTeamWebhook{URL: "ftp://receiver.example.test/"}, store.KindInvalid, "url"},
		{"no host", s, store.NewTeamWebhook{URL: "https:///scim"}, store.KindInvalid, "url"},
		{"user info", s, store.NewTeamWebhook{URL: "https://user:pass@receiver.example.test/"}, store.KindInvalid, "url"},
		{"fragment", s, store.NewTeamWebhook{URL: "https://receiver.example.test/#x"}, store.KindInvalid, "url"},
		{"too long", s, store.NewTeamWebhook{URL: long}, store.KindInvalid, "url"},
		{"secret with a space", s, store.NewTeamWebhook{URL: "https://receiver.example.test/", Secret: "a b"}, store.KindInvalid, "secret"},
		{"secret with a line break", s, store.NewTeamWebhook{URL: "https://receiver.example.test/", Secret: "a\r\nX-Evil: 1"}, store.KindInvalid, "secret"},
		{"secret too long", s, store.NewTeamWebhook{URL: "https://receiver.example.test/", Secret: strings.Repeat("x", 256)}, store.KindInvalid, "secret"},
		{"unknown protocol", s, store.NewTeamWebhook{URL: "https://receiver.example.test/", Protocol: "xmpp"}, store.KindInvalid, "protocol"},
		{"matrix room in People's form", s, matrixHook("https://www.tchap.gouv.fr/#/room/!abc:agent.tchap.gouv.fr"), 0, ""},
		{"matrix.to link with via", s, matrixHook("https://matrix.to/#/!abc:example.org?via=example.org"), 0, ""},
		{"matrix alias, percent-encoded", s, matrixHook("https://matrix.to/#/%23team:example.org"), 0, ""},
		{"bare matrix room id with a port", s, matrixHook("!abc:127.0.0.1:8448"), 0, ""},
		{"matrix link without a room", s, matrixHook("https://matrix.to/#/"), store.KindInvalid, "url"},
		{"matrix link to a user", s, matrixHook("https://matrix.to/#/@u:example.org"), store.KindInvalid, "url"},
		{"matrix link over http", dev, matrixHook("http://matrix.to/#/!a:example.org"), store.KindInvalid, "url"},
		{"matrix link with user info", s, matrixHook("https://u:p@matrix.to/#/!a:example.org"), store.KindInvalid, "url"},
		{"matrix room on a bad server name", s, matrixHook("https://matrix.to/#/!a:exa_mple/x"), store.KindInvalid, "url"},
		{"matrix webhook to a SCIM URL", s, matrixHook("https://receiver.example.test/scim/v2/Groups/1"), store.KindInvalid, "url"},
		{"unknown team", s, store.NewTeamWebhook{TeamID: uuid.New(), URL: "https://receiver.example.test/"}, store.KindNotFound, "teamId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.in
			if in.TeamID == uuid.Nil {
				in.TeamID = storetest.Team(t, s, uuid.Nil, "Hooks "+storetest.Unique())
			}
			_, err := tt.s.CreateTeamWebhook(t.Context(), in)
			if got := store.KindOf(err); got != tt.want {
				t.Fatalf("CreateTeamWebhook() kind = %v, want %v (err: %v)", got, tt.want, err)
			}
			var e *store.Error
			if errors.As(err, &e) && e.Field != tt.field {
				t.Errorf("field = %q, want %q", e.Field, tt.field)
			}
		})
	}

	t.Run("a bare room id is stored as its matrix.to link", func(t *testing.T) {
		w, err := s.CreateTeamWebhook(t.Context(), matrixHook("#team:example.org", team))
		if err != nil || w.URL != "https://matrix.to/#/%23team:example.org" || w.Protocol != store.WebhookProtocolMatrix {
			t.Errorf("CreateTeamWebhook() = %+v, %v; want the alias' matrix.to link", w, err)
		}
	})

	t.Run("protocol and URL checked together", func(t *testing.T) {
		w, err := s.CreateTeamWebhook(t.Context(), store.NewTeamWebhook{TeamID: team, URL: "https://receiver.example.test/pair"})
		if err != nil {
			t.Fatal(err)
		}
		matrix := store.WebhookProtocolMatrix
		if _, err := s.UpdateTeamWebhook(t.Context(), w.ID, store.TeamWebhookUpdate{Protocol: &matrix}); store.KindOf(err) != store.KindInvalid {
			t.Errorf("matrix protocol on a SCIM URL: err %v, want invalid", err)
		}
		room := "https://matrix.to/#/!pair:example.org"
		got, err := s.UpdateTeamWebhook(t.Context(), w.ID, store.TeamWebhookUpdate{Protocol: &matrix, URL: &room})
		if err != nil || got.URL != room || got.Protocol != matrix {
			t.Fatalf("UpdateTeamWebhook(matrix, room) = %+v, %v", got, err)
		}
		scim := store.WebhookProtocolSCIM
		if _, err := s.UpdateTeamWebhook(t.Context(), w.ID, store.TeamWebhookUpdate{Protocol: &scim}); store.KindOf(err) != store.KindInvalid {
			t.Errorf("SCIM protocol on a room link: err %v, want invalid", err)
		}
	})

	t.Run("one URL per team", func(t *testing.T) {
		in := store.NewTeamWebhook{TeamID: team, URL: "https://receiver.example.test/same"}
		if _, err := s.CreateTeamWebhook(t.Context(), in); err != nil {
			t.Fatal(err)
		}
		_, err := s.CreateTeamWebhook(t.Context(), in)
		if got := store.KindOf(err); got != store.KindConflict {
			t.Errorf("second CreateTeamWebhook() kind = %v, want conflict (err: %v)", got, err)
		}
	})
}

func TestTeamWebhookLifecycle(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := t.Context()
	team := storetest.Team(t, s, uuid.Nil, "Hooks "+storetest.Unique())
	other := storetest.Team(t, s, uuid.Nil, "Hooks "+storetest.Unique())

	w, err := s.CreateTeamWebhook(ctx, store.NewTeamWebhook{TeamID: team, URL: " https://receiver.example.test/a ", Secret: "first"})
	if err != nil {
		t.Fatal(err)
	}
	want := store.TeamWebhook{ID: w.ID, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, TeamID: team,
		URL: "https://receiver.example.test/a", Protocol: store.WebhookProtocolSCIM, Status: store.WebhookStatusPending, HasSecret: true}
	if diff := cmp.Diff(want, *w); diff != "" {
		t.Errorf("CreateTeamWebhook() (-want +got):\n%s", diff)
	}
	w2, err := s.CreateTeamWebhook(ctx, store.NewTeamWebhook{TeamID: team, URL: "https://receiver.example.test/b", Protocol: "scim"})
	if err != nil {
		t.Fatal(err)
	}
	if w2.HasSecret {
		t.Error("a webhook created without a secret has one")
	}

	got, err := s.TeamWebhooks(ctx, storetest.StaffActor(t, s), []uuid.UUID{team, other, uuid.New()})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[team]) != 2 || got[team][0].ID != w.ID || got[team][1].ID != w2.ID || len(got[other]) != 0 {
		t.Errorf("TeamWebhooks() = %+v, want the team's two webhooks, oldest first", got)
	}
	if none, err := s.TeamWebhooks(ctx, storetest.StaffActor(t, s), nil); err != nil || len(none) != 0 {
		t.Errorf("TeamWebhooks(nil) = %v, %v", none, err)
	}

	newURL, empty := "https://receiver.example.test/c", ""
	up, err := s.UpdateTeamWebhook(ctx, w.ID, store.TeamWebhookUpdate{URL: &newURL, Secret: &empty})
	if err != nil {
		t.Fatal(err)
	}
	if up.URL != newURL || up.HasSecret || !up.UpdatedAt.After(w.UpdatedAt) {
		t.Errorf("UpdateTeamWebhook() = %+v, want the new URL, no secret, a later updated_at", up)
	}
	secret := "second"
	if up, err = s.UpdateTeamWebhook(ctx, w.ID, store.TeamWebhookUpdate{Secret: &secret}); err != nil || !up.HasSecret || up.URL != newURL {
		t.Errorf("UpdateTeamWebhook(secret) = %+v, %v", up, err)
	}
	if _, err := s.UpdateTeamWebhook(ctx, w.ID, store.TeamWebhookUpdate{}); err != nil {
		t.Errorf("UpdateTeamWebhook(nothing) = %v", err)
	}
	bad := "http://receiver.example.test/"
	if _, err := s.UpdateTeamWebhook(ctx, w.ID, store.TeamWebhookUpdate{URL: &bad}); store.KindOf(err) != store.KindInvalid {
		t.Errorf("UpdateTeamWebhook(http) = %v, want invalid", err)
	}
	dup := "https://receiver.example.test/b"
	if _, err := s.UpdateTeamWebhook(ctx, w.ID, store.TeamWebhookUpdate{URL: &dup}); store.KindOf(err) != store.KindConflict {
		t.Errorf("UpdateTeamWebhook(the other webhook's URL) = %v, want conflict", err)
	}
	if _, err := s.UpdateTeamWebhook(ctx, uuid.New(), store.TeamWebhookUpdate{Secret: &secret}); store.KindOf(err) != store.KindNotFound {
		t.Errorf("UpdateTeamWebhook(unknown) = %v, want not found", err)
	}

	if err := s.DeleteTeamWebhook(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTeamWebhook(ctx, w.ID); store.KindOf(err) != store.KindNotFound {
		t.Errorf("second DeleteTeamWebhook() = %v, want not found", err)
	}
}

// delivery is a queued delivery as the membership triggers wrote it.
type delivery struct {
	Operation string    `bun:"operation"`
	UserID    uuid.UUID `bun:"user_id"`
	Email     string    `bun:"email"`
	URL       string    `bun:"url"`
	Secret    string    `bun:"secret"` // opened
}

// queued reads the team's deliveries from the outbox, their secrets opened.
func queued(t *testing.T, s *store.Store, team uuid.UUID) []delivery {
	t.Helper()
	var ds []delivery
	err := s.DB().NewRaw(`SELECT operation, user_id, coalesce(email, '') AS email, url, coalesce(secret, '') AS secret
		FROM team_webhook_deliveries WHERE team_id = ? ORDER BY seq`, team).Scan(t.Context(), &ds)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	if err := s.DB().NewRaw("SELECT webhook_id FROM team_webhook_deliveries WHERE team_id = ? ORDER BY seq", team).Scan(t.Context(), &ids); err != nil {
		t.Fatal(err)
	}
	for i := range ds {
		if strings.HasPrefix(ds[i].Secret, "plain:") || (ds[i].Secret != "" && !strings.HasPrefix(ds[i].Secret, "v1:")) {
			t.Errorf("delivery %+v: its secret is stored in clear", ds[i])
		}
		if ds[i].Secret, err = s.OpenSecret(ds[i].Secret, ids[i]); err != nil {
			t.Errorf("delivery %+v: %v", ds[i], err)
		}
	}
	return ds
}

// hooked is a team with every role and one webhook.
func hooked(t *testing.T, s *store.Store) (storetest.TeamRoles, *store.TeamWebhook) {
	t.Helper()
	team := storetest.TeamWithEveryRole(t, s)
	w, err := s.CreateTeamWebhook(t.Context(), store.NewTeamWebhook{TeamID: team.ID, URL: "https://receiver.example.test/" + storetest.Unique(), Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	return team, w
}

func emailOf(t *testing.T, s *store.Store, user uuid.UUID) string {
	t.Helper()
	u, err := s.UserByID(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	return u.Email
}

// Every path that changes a team's membership queues its announcement in the same transaction.
func TestMembershipChangesAreQueued(t *testing.T) {
	s := storetest.Open(t)

	t.Run("added, role changed, removed through the API", func(t *testing.T) {
		t.Parallel()
		team, w := hooked(t, s)
		owner := store.UserActor(team.Owner)
		a, err := s.CreateTeamAccess(t.Context(), owner, team.ID, team.Outsider, store.RoleMember)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetTeamAccessRole(t.Context(), owner, a.ID, store.RoleAdministrator); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteTeamAccess(t.Context(), owner, a.ID); err != nil {
			t.Fatal(err)
		}
		email := emailOf(t, s, team.Outsider)
		want := []delivery{
			{"add", team.Outsider, email, w.URL, "s3cret"},
			{"remove", team.Outsider, email, w.URL, "s3cret"}, // the role change sends nothing
		}
		if diff := cmp.Diff(want, queued(t, s, team.ID)); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
	})

	t.Run("invitation accepted at login", func(t *testing.T) {
		t.Parallel()
		team, w := hooked(t, s)
		email := "invitee-" + storetest.Unique() + "@example.test"
		if _, err := s.CreateInvitation(t.Context(), store.UserActor(team.Owner), store.NewInvitation{TeamID: team.ID, Email: email, Role: store.RoleMember}); err != nil {
			t.Fatal(err)
		}
		u, err := s.ProvisionLogin(t.Context(), store.Claims{EmailVerified: true, Issuer: "https://idp.example.test", Subject: "sub-" + storetest.Unique(), Email: email},
			store.DefaultLoginOptions())
		if err != nil {
			t.Fatal(err)
		}
		want := []delivery{{"add", u.ID, email, w.URL, "s3cret"}}
		if diff := cmp.Diff(want, queued(t, s, team.ID)); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
	})

	t.Run("team deleted", func(t *testing.T) {
		t.Parallel()
		team, w := hooked(t, s)
		if _, err := s.DeleteTeam(t.Context(), store.UserActor(team.Owner), team.ID, false); err != nil {
			t.Fatal(err)
		}
		got := queued(t, s, team.ID)
		if len(got) != 3 {
			t.Fatalf("deliveries = %+v, want the removal of the three members", got)
		}
		for _, d := range got {
			if d.Operation != "remove" || d.Email != emailOf(t, s, d.UserID) || d.URL != w.URL || d.Secret != "s3cret" {
				t.Errorf("delivery %+v, want a removal to the deleted webhook, with its secret and the user's email", d)
			}
		}
	})

	t.Run("user deleted", func(t *testing.T) {
		t.Parallel()
		team, w := hooked(t, s)
		email := emailOf(t, s, team.Member)
		storetest.MustExec(t, s.DB(), "DELETE FROM users WHERE id = ?", team.Member)
		want := []delivery{{"remove", team.Member, email, w.URL, "s3cret"}}
		if diff := cmp.Diff(want, queued(t, s, team.ID)); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
	})

	t.Run("access moved to another user", func(t *testing.T) {
		t.Parallel()
		team, w := hooked(t, s)
		storetest.MustExec(t, s.DB(), "UPDATE team_accesses SET user_id = ? WHERE id = ?", team.Outsider, team.MemberAccess)
		want := []delivery{
			{"remove", team.Member, emailOf(t, s, team.Member), w.URL, "s3cret"},
			{"add", team.Outsider, emailOf(t, s, team.Outsider), w.URL, "s3cret"},
		}
		if diff := cmp.Diff(want, queued(t, s, team.ID)); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
	})

	t.Run("one delivery per webhook, none without", func(t *testing.T) {
		t.Parallel()
		team, w := hooked(t, s)
		w2, err := s.CreateTeamWebhook(t.Context(), store.NewTeamWebhook{TeamID: team.ID, URL: "https://other.example.test/"})
		if err != nil {
			t.Fatal(err)
		}
		bare := storetest.TeamWithEveryRole(t, s)
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		storetest.Access(t, s, bare.ID, bare.Outsider, store.RoleMember)
		email := emailOf(t, s, team.Outsider)
		want := []delivery{{"add", team.Outsider, email, w.URL, "s3cret"}, {"add", team.Outsider, email, w2.URL, ""}}
		if w2.ID.String() < w.ID.String() {
			want[0], want[1] = want[1], want[0]
		}
		if diff := cmp.Diff(want, queued(t, s, team.ID)); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		if got := queued(t, s, bare.ID); len(got) != 0 {
			t.Errorf("a team without webhooks queued %+v", got)
		}
	})

	t.Run("pending deliveries follow their webhook", func(t *testing.T) {
		t.Parallel()
		team, w := hooked(t, s)
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		u, secret := "https://moved.example.test/"+storetest.Unique(), "rotated"
		if _, err := s.UpdateTeamWebhook(t.Context(), w.ID, store.TeamWebhookUpdate{URL: &u, Secret: &secret}); err != nil {
			t.Fatal(err)
		}
		if got := queued(t, s, team.ID); len(got) != 1 || got[0].URL != u || got[0].Secret != secret {
			t.Errorf("deliveries after the update = %+v, want the new URL and secret", got)
		}
		if err := s.DeleteTeamWebhook(t.Context(), w.ID); err != nil {
			t.Fatal(err)
		}
		if got := queued(t, s, team.ID); len(got) != 0 {
			t.Errorf("deliveries after the webhook's deletion = %+v, want them cancelled", got)
		}
	})
}

// An edit or a deletion of a webhook during a membership change waits for it, then applies to
// its deliveries too.
func TestTeamWebhookEditRacingAMembershipChange(t *testing.T) {
	s := storetest.Open(t)
	for _, tc := range []struct {
		name string
		edit func(ctx context.Context, w *store.TeamWebhook) error
		want int // deliveries left
	}{
		{"deleted", func(ctx context.Context, w *store.TeamWebhook) error { return s.DeleteTeamWebhook(ctx, w.ID) }, 0},
		{"moved", func(ctx context.Context, w *store.TeamWebhook) error {
			u := "https://moved.example.test/"
			_, err := s.UpdateTeamWebhook(ctx, w.ID, store.TeamWebhookUpdate{URL: &u})
			return err
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			team, w := hooked(t, s)
			tx, err := s.DB().BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			storetest.MustExec(t, tx, "INSERT INTO team_accesses (team_id, user_id, role) VALUES (?, ?, 'member')", team.ID, team.Outsider)
			done := make(chan error, 1)
			go func() { done <- tc.edit(context.Background(), w) }()
			select {
			case err := <-done:
				t.Fatalf("the edit did not wait for the membership change (err: %v)", err)
			case <-time.After(300 * time.Millisecond):
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got := queued(t, s, team.ID)
			if len(got) != tc.want || (tc.want == 1 && got[0].URL != "https://moved.example.test/") {
				t.Errorf("deliveries %+v, want %d, to the webhook's new URL", got, tc.want)
			}
		})
	}
}

// The outbox tables hold their rules whatever path writes.
func TestTeamWebhookConstraints(t *testing.T) {
	s := storetest.Open(t)
	r := rules{t, s}
	team := storetest.Team(t, s, uuid.Nil, "Hooks "+storetest.Unique())
	hook := r.id("INSERT INTO team_webhooks (team_id, url) VALUES (?, 'https://receiver.example.test/') RETURNING id", team)
	insertDelivery := "INSERT INTO team_webhook_deliveries (webhook_id, team_id, url, protocol, operation, user_id, status, secret, finished_at, attempts) VALUES (?, ?, 'https://r.test/', 'scim', ?, ?, ?, ?, ?, ?)"
	tests := []struct {
		name, constraint, code string
		query                  string
		args                   []any
	}{
		{"url with user info", "team_webhooks_url_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url) VALUES (?, 'https://u:p@r.test/')", []any{team}},
		{"url with a fragment", "team_webhooks_url_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url) VALUES (?, 'https://r.test/#f')", []any{team}},
		{"url of another scheme", "team_webhooks_url_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url) VALUES (?, 'javascript:alert(1)')", []any{team}},
		{"empty secret", "team_webhooks_secret_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url, secret) VALUES (?, 'https://r.test/a', '')", []any{team}},
		{"secret with a line break", "team_webhooks_secret_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url, secret) VALUES (?, 'https://r.test/b', E'a\\nb')", []any{team}},
		{"unknown protocol", "team_webhooks_protocol_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url, protocol) VALUES (?, 'https://r.test/c', 'xmpp')", []any{team}},
		{"scim url with a room link's fragment", "team_webhooks_url_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url) VALUES (?, 'https://matrix.to/#/!r:s.test')", []any{team}},
		{"matrix room link over http", "team_webhooks_url_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url, protocol) VALUES (?, 'http://matrix.to/#/!r:s.test', 'matrix')", []any{team}},
		{"matrix room link with user info", "team_webhooks_url_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url, protocol) VALUES (?, 'https://u@matrix.to/#/!r:s.test', 'matrix')", []any{team}},
		{"unknown status", "team_webhooks_status_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url, status) VALUES (?, 'https://r.test/d', 'done')", []any{team}},
		{"same URL twice in a team", "team_webhooks_team_id_url_key", uniqueViolation,
			"INSERT INTO team_webhooks (team_id, url) VALUES (?, 'https://receiver.example.test/')", []any{team}},
		{"unknown team", "team_webhooks_team_id_fkey", fkViolation,
			"INSERT INTO team_webhooks (team_id, url) VALUES (?, 'https://r.test/')", []any{uuid.New()}},
		{"unknown operation", "team_webhook_deliveries_operation_check", checkViolation,
			insertDelivery, []any{hook, team, "replace", uuid.New(), "pending", nil, nil, 0}},
		{"unknown delivery status", "team_webhook_deliveries_status_check", checkViolation,
			insertDelivery, []any{hook, team, "add", uuid.New(), "sent", nil, "2024-01-01T00:00:00Z", 1}},
		{"negative attempts", "team_webhook_deliveries_attempts_check", checkViolation,
			insertDelivery, []any{hook, team, "add", uuid.New(), "pending", nil, nil, -1}},
		{"finished delivery keeping its secret", "team_webhook_deliveries_finished_check", checkViolation,
			insertDelivery, []any{hook, team, "add", uuid.New(), "success", "plain:s3cret", "2024-01-01T00:00:00Z", 1}},
		{"secret in clear without its tag", "team_webhooks_secret_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url, secret) VALUES (?, 'https://r.test/e', 's3cret')", []any{team}},
		{"secret sealed in another form", "team_webhooks_secret_check", checkViolation,
			"INSERT INTO team_webhooks (team_id, url, secret) VALUES (?, 'https://r.test/f', 'v1:s3cret')", []any{team}},
		{"delivery secret in clear without its tag", "team_webhook_deliveries_secret_check", checkViolation,
			insertDelivery, []any{hook, team, "add", uuid.New(), "pending", "s3cret", nil, 0}},
		{"finished delivery without its time", "team_webhook_deliveries_finished_check", checkViolation,
			insertDelivery, []any{hook, team, "add", uuid.New(), "failure", nil, nil, 1}},
		{"pending delivery with a finish time", "team_webhook_deliveries_finished_check", checkViolation,
			insertDelivery, []any{hook, team, "add", uuid.New(), "pending", nil, "2024-01-01T00:00:00Z", 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := r.exec(tt.query, tt.args...)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tt.code || pgErr.ConstraintName != tt.constraint {
				t.Errorf("err = %v, want %s on %s", err, tt.code, tt.constraint)
			}
		})
	}
	t.Run("a finished delivery without its secret", func(t *testing.T) {
		t.Parallel()
		r.mustExec(insertDelivery, hook, team, "remove", uuid.New(), "success", nil, "2024-01-01T00:00:00Z", 1)
	})
	t.Run("a matrix webhook linking to its room", func(t *testing.T) {
		t.Parallel()
		r.mustExec("INSERT INTO team_webhooks (team_id, url, protocol) VALUES (?, 'https://www.tchap.gouv.fr/#/room/!r:agent.tchap.gouv.fr', 'matrix')", team)
	})
}

func TestPurgeWebhookDeliveries(t *testing.T) {
	s := storetest.Open(t)
	r := rules{t, s}
	team := storetest.Team(t, s, uuid.Nil, "Hooks "+storetest.Unique())
	hook := r.id("INSERT INTO team_webhooks (team_id, url) VALUES (?, 'https://receiver.example.test/') RETURNING id", team)
	insert := `INSERT INTO team_webhook_deliveries (webhook_id, team_id, url, protocol, operation, user_id, status, finished_at)
		VALUES (?, ?, 'https://receiver.example.test/', 'scim', 'add', gen_random_uuid(), ?, now() - ? * interval '1 hour') RETURNING id`
	old := r.id(insert, hook, team, "success", 49)
	oldFailure := r.id(insert, hook, team, "failure", 49)
	recent := r.id(insert, hook, team, "failure", 1)
	pending := r.id(`INSERT INTO team_webhook_deliveries (webhook_id, team_id, url, protocol, operation, user_id, created_at)
		VALUES (?, ?, 'https://receiver.example.test/', 'scim', 'add', gen_random_uuid(), now() - interval '49 hours') RETURNING id`, hook, team)
	if n, err := s.PurgeWebhookDeliveries(t.Context(), 48*time.Hour); err != nil || n < 2 {
		t.Fatalf("PurgeWebhookDeliveries() = %d, %v", n, err)
	}
	var left []uuid.UUID
	if err := s.DB().NewRaw("SELECT id FROM team_webhook_deliveries WHERE team_id = ?", team).Scan(t.Context(), &left); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(left, old) || slices.Contains(left, oldFailure) || !slices.Contains(left, recent) || !slices.Contains(left, pending) {
		t.Errorf("left %v: want the recent and the pending ones only", left)
	}
}

// matrixHook is a Matrix webhook to create, for team or, when none is given, the test's own.
func matrixHook(url string, team ...uuid.UUID) store.NewTeamWebhook {
	in := store.NewTeamWebhook{URL: url, Protocol: store.WebhookProtocolMatrix}
	if len(team) > 0 {
		in.TeamID = team[0]
	}
	return in
}
