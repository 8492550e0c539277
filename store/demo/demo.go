// Package demo loads the demonstration directory of `make run` and of the benchmarks:
// organizations, users with French and English names, teams, contacts, invitations and service
// providers, plus People's fixed end-to-end users. The same Options always produce the same rows,
// ids included, and a reload restores demo rows that someone changed or deleted. It imports store
// for the row models and nothing above it (graph, auth, main).
package demo

import (
	"context"
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"lasuite.fr/people/store"
)

// Options size the data set; the zero value is the demo of `make run`. A zero count means its
// default; a negative count means none.
type Options struct {
	Organizations  int    // default 2, and never fewer: the fixed e2e users belong to the second (example.com)
	Users          int    // generated users; default 1000, plus the fixed users
	Teams          int    // generated teams; default 100, plus the fixed e2e teams
	MaxTeamSize    int    // members of a generated team, 1 to this; default 30
	Contacts       int    // personal contacts, spread over random owners; default Users/2
	PublicContacts int    // contacts without an owner; default 20
	Seed           uint64 // default 1; changes the content, never the ids
	Issuer         string // OIDC issuer of the users' identities; default "http://localhost:8071/dev-oidc"
}

// Stats is the size of the data set, by kind: the same on every load of the same Options.
// Users include the fixed users, Teams the e2e teams, Contacts the users' profile contacts.
type Stats struct {
	Organizations, Users, Teams, TeamAccesses, Contacts, Invitations, ServiceProviders int
}

// The fixed users of People's end-to-end tests. They belong to the example.com organization and
// hold their roles in the team "E2E Team"; the owner also owns two more teams.
const (
	E2EOwnerSub         = "e2e.team-owner"
	E2EAdministratorSub = "e2e.team-administrator"
	E2EMemberSub        = "e2e.team-member"
	E2ETeamName         = "E2E Team"
)

// Load writes the demo data set in one transaction and reports its size. Rows are upserted by
// deterministic ids, so Load is idempotent; see upsert for how unique keys are reclaimed.
func Load(ctx context.Context, db *bun.DB, o Options) (Stats, error) {
	o = o.withDefaults()
	d := generate(o)
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// Parents before children: each step's foreign keys point at rows already written.
		steps := []func() error{
			func() error {
				return upsert(ctx, tx, d.organizations, nil, "name", "metadata", "is_active", "created_at")
			},
			func() error {
				return upsert(ctx, tx, d.registrationIDs, keys("registration_id"), "organization_id", "registration_id", "created_at")
			},
			func() error {
				return upsert(ctx, tx, d.domains, keys("domain"), "organization_id", "domain", "created_at")
			},
			func() error {
				return upsert(ctx, tx, d.users, keys("sub"), "sub", "email", "name", "language", "timezone",
					"is_device", "is_staff", "is_active", "organization_id", "created_at")
			},
			func() error {
				return upsert(ctx, tx, d.identities, keys("issuer,subject,audience"), "user_id", "issuer", "subject", "audience", "created_at")
			},
			func() error {
				return upsert(ctx, tx, d.organizationAccesses, keys("user_id,organization_id"), "organization_id", "user_id", "role", "created_at")
			},
			func() error {
				return upsert(ctx, tx, d.serviceProviders, keys("name", "audience_id"), "name", "audience_id", "created_at")
			},
			func() error {
				return upsert(ctx, tx, d.organizationServiceProviders, keys("organization_id,service_provider_id"),
					"organization_id", "service_provider_id", "created_at")
			},
			func() error {
				// parent_id only: the database derives path, depth and numchild, parents first.
				return upsert(ctx, tx, d.teams, keys("external_id"), "name", "organization_id", "parent_id", "is_visible_all_services", "external_id", "created_at")
			},
			func() error {
				return upsert(ctx, tx, d.teamServiceProviders, keys("team_id,service_provider_id"), "team_id", "service_provider_id", "created_at")
			},
			// The webhooks before the accesses: a first load queues their members' deliveries.
			func() error {
				return upsert(ctx, tx, d.teamWebhooks, keys("team_id,url"), "team_id", "url", "protocol", "created_at")
			},
			func() error {
				// Stored as an operator's psql would (migration 0009): the server seals it at its
				// start, which a reload must not undo, hence only when there is none.
				_, err := tx.ExecContext(ctx, "UPDATE team_webhooks SET secret = ? WHERE id IN (?) AND secret IS NULL",
					"plain:"+demoMatrixToken, bun.List(webhookIDs(d.teamWebhooks)))
				return err
			},
			func() error {
				return upsert(ctx, tx, d.teamAccesses, keys("team_id,user_id"), "team_id", "user_id", "role", "created_at")
			},
			func() error {
				return upsert(ctx, tx, d.contacts, keys("user_id"), "override_id", "owner_id", "user_id", "full_name",
					"short_name", "notes", "data", "created_at")
			},
			func() error { return insertInvitations(ctx, tx, d.invitations) },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("load demo: %w", err)
	}
	return Stats{
		Organizations:    len(d.organizations),
		Users:            len(d.users),
		Teams:            len(d.teams),
		TeamAccesses:     len(d.teamAccesses),
		Contacts:         len(d.contacts),
		Invitations:      len(d.invitations),
		ServiceProviders: len(d.serviceProviders),
	}, nil
}

// Loaded reports whether the demo's fixed users exist, for `demo --once`.
func Loaded(ctx context.Context, db *bun.DB) (bool, error) {
	ids := []uuid.UUID{fixedUserID(E2EOwnerSub), fixedUserID(E2EAdministratorSub), fixedUserID(E2EMemberSub)}
	n, err := db.NewSelect().TableExpr("users").Where("id IN (?)", bun.List(ids)).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("count demo users: %w", err)
	}
	return n == int64(len(ids)), nil
}

func (o Options) withDefaults() Options {
	count := func(n *int, def int) {
		switch {
		case *n == 0:
			*n = def
		case *n < 0:
			*n = 0
		}
	}
	count(&o.Organizations, 2)
	o.Organizations = max(o.Organizations, 2)
	count(&o.Users, 1000)
	count(&o.Teams, 100)
	count(&o.MaxTeamSize, 30)
	o.MaxTeamSize = max(o.MaxTeamSize, 1)
	count(&o.Contacts, max(o.Users/2, 1))
	count(&o.PublicContacts, 20)
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Issuer == "" {
		o.Issuer = "http://localhost:8071/dev-oidc"
	}
	return o
}

// ---- ids and times

// namespace is uuid.NewSHA1(uuid.NameSpaceURL, "https://lasuite.fr/people/demo"): every demo id
// is a name in it ("user/42", "team/7"), so ids never depend on the seed and a reload with
// another seed rewrites the same rows.
var namespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://lasuite.fr/people/demo"))

func id(parts ...any) uuid.UUID {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = fmt.Sprint(p)
	}
	return uuid.NewSHA1(namespace, []byte(strings.Join(s, "/")))
}

func fixedUserID(sub string) uuid.UUID { return id("user", sub) }

// epoch dates the demo: rows are created over the year that follows, at fixed times, so that
// "newest first" lists come out in the same order after every reload.
var epoch = time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC)

// spread is the creation time of the i-th of n rows, spread over a year after epoch.
func spread(i, n int) time.Time {
	return epoch.Add((time.Duration(i) * 365 * 24 * time.Hour / time.Duration(max(n, 1))).Truncate(time.Second))
}

// ---- rows of the tables that store has no model for

type registrationID struct {
	bun.BaseModel  `bun:"table:organization_registration_ids,alias:ori"`
	ID             uuid.UUID `bun:"id,pk,type:uuid"`
	CreatedAt      time.Time `bun:"created_at,notnull"`
	OrganizationID uuid.UUID `bun:"organization_id,type:uuid,notnull"`
	RegistrationID string    `bun:"registration_id,notnull"`
}

type organizationDomain struct {
	bun.BaseModel  `bun:"table:organization_domains,alias:od"`
	ID             uuid.UUID `bun:"id,pk,type:uuid"`
	CreatedAt      time.Time `bun:"created_at,notnull"`
	OrganizationID uuid.UUID `bun:"organization_id,type:uuid,notnull"`
	Domain         string    `bun:"domain,notnull"`
}

type userIdentity struct {
	bun.BaseModel `bun:"table:user_identities,alias:ui"`
	ID            uuid.UUID `bun:"id,pk,type:uuid"`
	CreatedAt     time.Time `bun:"created_at,notnull"`
	UserID        uuid.UUID `bun:"user_id,type:uuid,notnull"`
	Issuer        string    `bun:"issuer,notnull"`
	Subject       string    `bun:"subject,notnull"`
	Audience      string    `bun:"audience,notnull"`
}

type organizationAccess struct {
	bun.BaseModel  `bun:"table:organization_accesses,alias:oa"`
	ID             uuid.UUID `bun:"id,pk,type:uuid"`
	CreatedAt      time.Time `bun:"created_at,notnull"`
	OrganizationID uuid.UUID `bun:"organization_id,type:uuid,notnull"`
	UserID         uuid.UUID `bun:"user_id,type:uuid,notnull"`
	Role           string    `bun:"role,notnull"`
}

type organizationServiceProvider struct {
	bun.BaseModel     `bun:"table:organization_service_providers,alias:osp"`
	ID                uuid.UUID `bun:"id,pk,type:uuid"`
	CreatedAt         time.Time `bun:"created_at,notnull"`
	OrganizationID    uuid.UUID `bun:"organization_id,type:uuid,notnull"`
	ServiceProviderID uuid.UUID `bun:"service_provider_id,type:uuid,notnull"`
}

type teamWebhook struct {
	bun.BaseModel `bun:"table:team_webhooks,alias:tw"`
	ID            uuid.UUID `bun:"id,pk,type:uuid"`
	CreatedAt     time.Time `bun:"created_at,notnull"`
	TeamID        uuid.UUID `bun:"team_id,type:uuid,notnull"`
	URL           string    `bun:"url,notnull"`
	Protocol      string    `bun:"protocol,notnull"`
}

func webhookIDs(ws []teamWebhook) []uuid.UUID {
	ids := make([]uuid.UUID, len(ws))
	for i, w := range ws {
		ids[i] = w.ID
	}
	return ids
}

type teamServiceProvider struct {
	bun.BaseModel     `bun:"table:team_service_providers,alias:tsp"`
	ID                uuid.UUID `bun:"id,pk,type:uuid"`
	CreatedAt         time.Time `bun:"created_at,notnull"`
	TeamID            uuid.UUID `bun:"team_id,type:uuid,notnull"`
	ServiceProviderID uuid.UUID `bun:"service_provider_id,type:uuid,notnull"`
}

// ---- writing

// batchSize bounds one statement: bun inlines the values, so a batch of contacts is about 1 MB.
const batchSize = 2000

// keys lists a table's unique keys besides its id, each as comma-separated columns.
func keys(k ...string) [][]string {
	out := make([][]string, len(k))
	for i, s := range k {
		out[i] = strings.Split(s, ",")
	}
	return out
}

// upsert writes rows by id, restoring the columns cols of demo rows that someone changed.
//
// A demo row's unique key may be held by a row with another id: a member removed and added back
// through the API, a sub or a domain taken by a login. ON CONFLICT names one arbiter only, so the
// statement first deletes such rows (the demo owns its subs, domains, SIRETs and (team, user)
// pairs): the scalar subquery over "gone" makes that DELETE run to completion before the first
// insert, and the unique checks ignore rows this transaction deleted. Rows that already match are
// left out before they reach INSERT, so a reload neither touches their updated_at nor pays for
// contacts_data_check again, which is most of the cost of a first load.
func upsert[T any](ctx context.Context, tx bun.Tx, rows []T, uniques [][]string, cols ...string) error {
	all := append([]string{"id"}, cols...)
	mine, theirs, set := make([]string, len(cols)), make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		mine[i], theirs[i], set[i] = "y."+c, "d."+c, c+" = EXCLUDED."+c
	}
	table := tx.NewValues(&rows).GetTableName()
	gone, guard := "", ""
	if len(uniques) > 0 {
		held := make([]string, len(uniques))
		for i, key := range uniques {
			x, d := make([]string, len(key)), make([]string, len(key))
			for j, k := range key {
				x[j], d[j] = "x."+k, "d."+k
			}
			held[i] = "(" + strings.Join(x, ", ") + ") = (" + strings.Join(d, ", ") + ")"
		}
		gone = fmt.Sprintf(",\n\tgone AS (DELETE FROM %s AS x USING d WHERE x.id <> d.id AND (%s) RETURNING 1)", table, strings.Join(held, " OR "))
		guard = "(SELECT count(*) FROM gone) >= 0 AND "
	}
	query := fmt.Sprintf(`WITH d (%[2]s) AS (?)%[3]s
INSERT INTO %[1]s AS x (%[2]s) SELECT * FROM d
WHERE %[4]sNOT EXISTS (SELECT 1 FROM %[1]s AS y WHERE y.id = d.id AND (%[5]s) IS NOT DISTINCT FROM (%[6]s))
ON CONFLICT (id) DO UPDATE SET %[7]s`,
		table, strings.Join(all, ", "), gone, guard, strings.Join(mine, ", "), strings.Join(theirs, ", "), strings.Join(set, ", "))
	for start := 0; start < len(rows); start += batchSize {
		batch := rows[start:min(start+batchSize, len(rows))]
		if _, err := tx.NewRaw(query, tx.NewValues(&batch).Column(all...)).Exec(ctx); err != nil {
			return fmt.Errorf("upsert %s: %w", table, err)
		}
	}
	return nil
}

// insertInvitations replaces the demo invitations. An invitation cannot be edited (see
// freeze_invitation), so restoring one means inserting it again; and as it expires a week after
// its creation, it is the one demo row dated at load time, so that it can still be accepted.
// An invitation someone made for the same email and team wins over the demo's.
func insertInvitations(ctx context.Context, tx bun.Tx, rows []store.Invitation) error {
	for start := 0; start < len(rows); start += batchSize {
		batch := rows[start:min(start+batchSize, len(rows))]
		ids := make([]uuid.UUID, len(batch))
		for i, inv := range batch {
			ids[i] = inv.ID
		}
		if _, err := tx.NewDelete().Model((*store.Invitation)(nil)).Where("id IN (?)", bun.List(ids)).Exec(ctx); err != nil {
			return fmt.Errorf("delete demo invitations: %w", err)
		}
		if _, err := tx.NewInsert().Model(&batch).On("CONFLICT DO NOTHING").Returning("").Exec(ctx); err != nil {
			return fmt.Errorf("insert invitations: %w", err)
		}
	}
	return nil
}

// ---- generating

type dataSet struct {
	organizations                []store.Organization
	registrationIDs              []registrationID
	domains                      []organizationDomain
	users                        []store.User
	identities                   []userIdentity
	organizationAccesses         []organizationAccess
	serviceProviders             []store.ServiceProvider
	organizationServiceProviders []organizationServiceProvider
	teams                        []store.Team
	teamServiceProviders         []teamServiceProvider
	teamWebhooks                 []teamWebhook
	teamAccesses                 []store.TeamAccess
	contacts                     []store.Contact
	invitations                  []store.Invitation
}

// Each part of the data set draws from its own stream, so that changing one count (Teams) leaves
// the other parts (users' names) as they were.
const (
	streamUsers uint64 = iota + 1
	streamAdmins
	streamTeams
	streamContacts
	streamPublic
)

func random(o Options, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(o.Seed, stream)) }

func generate(o Options) *dataSet {
	d := &dataSet{}
	d.addOrganizations(o)
	d.addServiceProviders()
	d.addUsers(o)
	d.addTeams(o)
	d.addContacts(o)
	return d
}

func (d *dataSet) addOrganizations(o Options) {
	for i := range o.Organizations {
		name, domain := fmt.Sprintf("Organisation de démonstration n°%d", i+1), fmt.Sprintf("org%d.demo.gouv.fr", i+1)
		switch i {
		case 0:
			name, domain = "Ministère de la Démonstration", "demo.gouv.fr"
		case 1:
			name, domain = "Commune d'Exemple", "example.com"
		}
		org := store.Organization{ID: id("organization", i), CreatedAt: epoch, Name: name, Metadata: map[string]any{}, IsActive: true}
		d.organizations = append(d.organizations, org)
		d.registrationIDs = append(d.registrationIDs, registrationID{ID: id("organization", i, "siret"), CreatedAt: epoch,
			OrganizationID: org.ID, RegistrationID: siret(i)})
		d.domains = append(d.domains, organizationDomain{ID: id("organization", i, "domain"), CreatedAt: epoch,
			OrganizationID: org.ID, Domain: domain})
	}
}

// siret makes a 14-digit SIRET that passes the Luhn check, as real ones do.
func siret(i int) string {
	sum := sha1.Sum([]byte("siret/" + strconv.Itoa(i)))
	digits := make([]byte, 13, 14)
	for k := range digits {
		digits[k] = '0' + sum[k]%10
	}
	digits[0] = '1' + byte(i%2) // 1… for the State, 2… for local authorities
	total := 0
	for k := range digits {
		n := int(digits[len(digits)-1-k] - '0')
		if k%2 == 0 { // doubled: the check digit will take the rightmost place
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		total += n
	}
	return string(append(digits, byte('0'+(10-total%10)%10)))
}

func (d *dataSet) addServiceProviders() {
	for _, sp := range []struct{ name, audience string }{{"Docs", "docs"}, {"Meet", "meet"}} {
		p := store.ServiceProvider{ID: id("service_provider", sp.audience), CreatedAt: epoch, Name: sp.name, AudienceID: sp.audience}
		d.serviceProviders = append(d.serviceProviders, p)
		for _, org := range d.organizations {
			d.organizationServiceProviders = append(d.organizationServiceProviders, organizationServiceProvider{
				ID: id("organization_service_provider", org.ID, p.ID), CreatedAt: epoch, OrganizationID: org.ID, ServiceProviderID: p.ID})
		}
	}
}

// addUser appends a user, its identity at the issuer and its profile contact, which People
// creates at first login: owned by the user, named after them, with their email.
func (d *dataSet) addUser(o Options, u store.User) {
	d.users = append(d.users, u)
	d.identities = append(d.identities, userIdentity{ID: id("user_identity", u.ID), CreatedAt: u.CreatedAt,
		UserID: u.ID, Issuer: o.Issuer, Subject: u.Sub})
	fullName := u.Name
	if fullName == "" {
		fullName = u.Email
	}
	d.contacts = append(d.contacts, store.Contact{ID: id("contact/profile", u.ID), CreatedAt: u.CreatedAt,
		OwnerID: &u.ID, UserID: &u.ID, FullName: fullName,
		Data: map[string]any{"emails": []map[string]string{{"type": "Work", "value": u.Email}}}})
}

func (d *dataSet) addUsers(o Options) {
	e2eOrg := &d.organizations[1].ID
	for _, f := range []struct{ sub, name string }{
		{E2EOwnerSub, "E2E Team Owner"}, {E2EAdministratorSub, "E2E Team Administrator"}, {E2EMemberSub, "E2E Team Member"},
	} {
		d.addUser(o, store.User{ID: fixedUserID(f.sub), CreatedAt: epoch, Sub: f.sub, Email: f.sub + "@example.com",
			Name: f.name, Language: "en-us", Timezone: "Europe/Paris", IsActive: true, OrganizationID: e2eOrg})
	}
	r := random(o, streamAdmins)
	for i, org := range d.organizations {
		first, last := randomName(r)
		sub := "admin." + d.domains[i].Domain
		u := store.User{ID: fixedUserID(sub), CreatedAt: epoch, Sub: sub, Email: "admin@" + d.domains[i].Domain,
			Name: first + " " + last, Language: "fr-fr", Timezone: "Europe/Paris", IsActive: true, OrganizationID: &org.ID}
		d.addUser(o, u)
		d.organizationAccesses = append(d.organizationAccesses, organizationAccess{ID: id("organization_access", org.ID, u.ID),
			CreatedAt: epoch, OrganizationID: org.ID, UserID: u.ID, Role: "administrator"})
	}
	r = random(o, streamUsers)
	for i := 1; i <= o.Users; i++ {
		first, last := randomName(r)
		org := r.IntN(len(d.organizations))
		local := fold(first) + "." + fold(last) + strconv.Itoa(i)
		u := store.User{ID: id("user", i), CreatedAt: spread(i, o.Users), Sub: local, Email: local + "@" + d.domains[org].Domain,
			Name: first + " " + last, Language: "fr-fr", Timezone: "Europe/Paris", IsActive: true, OrganizationID: &d.organizations[org].ID}
		if r.IntN(100) < 3 { // the identity provider gave no name
			u.Name = ""
		}
		if r.IntN(3) == 0 {
			u.Language = "en-us"
		}
		if r.IntN(100) < 15 {
			u.Timezone = otherTimezones[r.IntN(len(otherTimezones))]
		}
		d.addUser(o, u)
	}
}

// addTeam appends a team and its accesses: members are indexes in d.users, with their roles.
func (d *dataSet) addTeam(t store.Team, members []int, roles []store.Role) {
	d.teams = append(d.teams, t)
	for k, m := range members {
		u := d.users[m].ID
		d.teamAccesses = append(d.teamAccesses, store.TeamAccess{ID: id("team_access", t.ID, u),
			CreatedAt: t.CreatedAt.Add(time.Duration(k) * time.Minute), TeamID: t.ID, UserID: u, Role: roles[k]})
	}
}

func (d *dataSet) linkService(t store.Team, sp int) {
	p := d.serviceProviders[sp].ID
	d.teamServiceProviders = append(d.teamServiceProviders, teamServiceProvider{ID: id("team_service_provider", t.ID, p),
		CreatedAt: t.CreatedAt, TeamID: t.ID, ServiceProviderID: p})
}

// addTree adds a team tree of three levels to the first organization, with no random draw (the
// teams that follow keep their content): its administrator owns the three teams, and the
// organization's first generated user is a member of the deepest only, so that, logged in as
// them, the two others show as inherited ancestors.
func (d *dataSet) addTree() {
	org := d.organizations[0].ID
	admin := slices.IndexFunc(d.users, func(u store.User) bool { return u.Sub == "admin."+d.domains[0].Domain })
	member := slices.IndexFunc(d.users[5:], func(u store.User) bool { return *u.OrganizationID == org })
	var parent *uuid.UUID
	for k, name := range []string{"Direction du numérique", "Pôle produits", "Équipe Annuaire"} {
		t := store.Team{ID: id("team", "tree", k+1), CreatedAt: epoch.Add(time.Duration(k+3) * time.Hour), Name: name,
			OrganizationID: &org, ParentID: parent, IsVisibleAllServices: true, ExternalID: id("team", "tree", k+1, "external")}
		members, roles := []int{admin}, []store.Role{store.RoleOwner}
		if k == 2 && member >= 0 {
			members, roles = append(members, member+5), append(roles, store.RoleMember)
		}
		d.addTeam(t, members, roles)
		parent = &t.ID
	}
	// A Matrix room on a homeserver that does not exist (.invalid, RFC 2606), so that staff see
	// in make run what a failing webhook looks like: its deliveries wait, retried with backoff,
	// with the failure's class.
	d.teamWebhooks = append(d.teamWebhooks, teamWebhook{ID: id("team_webhook", "tree", 3, "matrix"),
		CreatedAt: epoch.Add(5 * time.Hour), TeamID: *parent, URL: DemoMatrixRoom, Protocol: store.WebhookProtocolMatrix})
}

// DemoMatrixRoom is the room of the demo's Matrix webhook, on the team "Équipe Annuaire": a
// homeserver nobody can reach.
const DemoMatrixRoom = "https://matrix.to/#/!annuaire:matrix.invalid"

// demoMatrixToken is the demo Matrix webhook's secret: no homeserver ever sees it.
const demoMatrixToken = "demo-matrix-bot-token"

func (d *dataSet) addTeams(o Options) {
	const owner, admin, member = 0, 1, 2 // the fixed users, first in d.users
	e2eOrg := &d.organizations[1].ID
	e2e := store.Team{ID: id("team", "e2e"), CreatedAt: epoch, Name: E2ETeamName, OrganizationID: e2eOrg, ExternalID: id("team", "e2e", "external")}
	d.addTeam(e2e, []int{owner, admin, member}, []store.Role{store.RoleOwner, store.RoleAdministrator, store.RoleMember})
	d.linkService(e2e, 0)
	for k, extra := range [][]int{{owner, member}, {owner}} {
		t := store.Team{ID: id("team", "e2e", k+2), CreatedAt: epoch.Add(time.Duration(k+1) * time.Hour),
			Name: fmt.Sprintf("E2E Owner Team %d", k+1), OrganizationID: e2eOrg, ExternalID: id("team", "e2e", k+2, "external")}
		d.addTeam(t, extra, []store.Role{store.RoleOwner, store.RoleMember}[:len(extra)])
	}

	if o.Teams > 0 {
		d.addTree()
	}

	// Random teams draw their members from one organization, as People's user search offers
	// only colleagues; the e2e users stay out, so that their teams are exactly the ones above.
	pools := make(map[uuid.UUID][]int)
	var all []int
	for i, u := range d.users[3:] {
		pools[*u.OrganizationID] = append(pools[*u.OrganizationID], i+3)
		all = append(all, i+3)
	}
	r := random(o, streamTeams)
	names := make([]string, 0, len(teamKinds)*len(teamTopics))
	for _, k := range teamKinds {
		for _, t := range teamTopics {
			names = append(names, k+" "+t)
		}
	}
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	invited := 0
	for i := range o.Teams {
		first := all[r.IntN(len(all))] // weighs organizations by their size, and becomes an owner
		org := d.users[first].OrganizationID
		name := names[i%len(names)]
		if i >= len(names) {
			name += " " + strconv.Itoa(i/len(names)+1)
		}
		t := store.Team{ID: id("team", i+1), CreatedAt: spread(i+1, o.Teams), Name: name, OrganizationID: org,
			IsVisibleAllServices: r.IntN(10) == 0, ExternalID: id("team", i+1, "external")}
		// Mostly small teams, a few large ones: the mean is about a quarter of the maximum.
		u := r.Float64()
		size := min(1+int(float64(o.MaxTeamSize-1)*u*u*u), len(pools[*org]))
		members, roles := pick(r, pools[*org], first, size), make([]store.Role, size)
		var owners []int
		for k := range members {
			switch p := r.IntN(100); {
			case k == 0 || p < 5:
				roles[k] = store.RoleOwner
				owners = append(owners, members[k])
			case p < 20:
				roles[k] = store.RoleAdministrator
			default:
				roles[k] = store.RoleMember
			}
		}
		d.addTeam(t, members, roles)
		if r.IntN(10) < 3 {
			d.linkService(t, 0)
		}
		if r.IntN(10) < 2 {
			d.linkService(t, 1)
		}
		if r.IntN(4) == 0 {
			for range 1 + r.IntN(3) {
				invited++
				fn, ln := randomName(r)
				role := store.RoleMember
				if r.IntN(5) == 0 {
					role = store.RoleAdministrator
				}
				// The number makes each email unique, and the domains are none of the
				// organizations', so the invited are never users already.
				email := fold(fn) + "." + fold(ln) + strconv.Itoa(invited) + "@" + externalDomains[r.IntN(len(externalDomains))]
				d.invitations = append(d.invitations, store.Invitation{ID: id("invitation", invited), Email: email,
					TeamID: t.ID, Role: role, IssuerID: d.users[owners[r.IntN(len(owners))]].ID})
			}
		}
	}
}

// pick returns size distinct members of pool, first among them and in the first place.
func pick(r *rand.Rand, pool []int, first, size int) []int {
	out := []int{first}
	if size*2 > len(pool) {
		for _, k := range r.Perm(len(pool)) {
			if len(out) == size {
				break
			}
			if pool[k] != first {
				out = append(out, pool[k])
			}
		}
		return out
	}
	seen := map[int]bool{first: true}
	for len(out) < size {
		if m := pool[r.IntN(len(pool))]; !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

func (d *dataSet) addContacts(o Options) {
	r := random(o, streamPublic)
	for i := range o.PublicContacts {
		c := store.Contact{ID: id("contact/public", i), CreatedAt: spread(i, o.PublicContacts)}
		if i < len(publicServices) {
			s := publicServices[i]
			c.FullName, c.ShortName = s.name, s.short
			c.Data = map[string]any{
				"emails":    []map[string]string{{"type": "Work", "value": s.email}},
				"phones":    []map[string]string{{"type": "Main", "value": phone(r, "01")}},
				"addresses": []map[string]string{address(r, "Work")},
			}
		} else {
			first, last := randomName(r)
			c.FullName = first + " " + last
			c.Data = personData(r, first, last, i)
		}
		d.contacts = append(d.contacts, c)
	}
	r = random(o, streamContacts)
	for i := range o.Contacts {
		owner := &d.users[r.IntN(len(d.users))]
		first, last := randomName(r)
		c := store.Contact{ID: id("contact", i), CreatedAt: owner.CreatedAt.Add(time.Duration(i%1440) * time.Minute),
			OwnerID: &owner.ID, FullName: first + " " + last, Data: personData(r, first, last, i)}
		if r.IntN(2) == 0 {
			c.ShortName = first
		}
		if r.IntN(5) == 0 {
			c.Notes = notes[r.IntN(len(notes))]
		}
		d.contacts = append(d.contacts, c)
	}
}

// personData is contact data valid against People's contact schema (contact_data_valid).
func personData(r *rand.Rand, first, last string, n int) map[string]any {
	data := map[string]any{}
	emails := []map[string]string{{"type": "Home", "value": fold(first) + "." + fold(last) + strconv.Itoa(n) + "@" + mailProviders[r.IntN(len(mailProviders))]}}
	if r.IntN(4) == 0 {
		emails = append(emails, map[string]string{"type": "Work", "value": fold(first) + "." + fold(last) + "@" + externalDomains[r.IntN(len(externalDomains))]})
	}
	data["emails"] = emails
	if r.IntN(10) < 6 {
		phones := []map[string]string{{"type": "Mobile", "value": phone(r, "06")}}
		if r.IntN(4) == 0 {
			phones = append(phones, map[string]string{"type": "Work", "value": phone(r, "01")})
		}
		data["phones"] = phones
	}
	if r.IntN(10) < 3 {
		data["addresses"] = []map[string]string{address(r, "Home")}
	}
	if r.IntN(5) == 0 {
		data["organizations"] = []map[string]string{{"name": employers[r.IntN(len(employers))], "jobTitle": jobTitles[r.IntN(len(jobTitles))]}}
	}
	if r.IntN(10) == 0 {
		data["links"] = []map[string]string{{"type": "LinkedIn", "value": "https://www.linkedin.com/in/" + fold(first) + "-" + fold(last)}}
	}
	if r.IntN(20) == 0 {
		data["customFields"] = map[string]string{"Anniversaire": fmt.Sprintf("%d %s", 1+r.IntN(28), months[r.IntN(len(months))])}
	}
	return data
}

func phone(r *rand.Rand, prefix string) string {
	return fmt.Sprintf("+33 %s %02d %02d %02d %02d", prefix[1:], r.IntN(100), r.IntN(100), r.IntN(100), r.IntN(100))
}

func address(r *rand.Rand, kind string) map[string]string {
	c := cities[r.IntN(len(cities))]
	return map[string]string{"type": kind, "street": fmt.Sprintf("%d %s", 1+r.IntN(120), streets[r.IntN(len(streets))]),
		"city": c.name, "zip": c.zip, "country": "France"}
}

// randomName draws a French (two times in three) or English name.
func randomName(r *rand.Rand) (first, last string) {
	if r.IntN(3) < 2 {
		return frenchFirst[r.IntN(len(frenchFirst))], frenchLast[r.IntN(len(frenchLast))]
	}
	return englishFirst[r.IntN(len(englishFirst))], englishLast[r.IntN(len(englishLast))]
}

// folder spells accented letters in ASCII, for emails and subs.
var folder = strings.NewReplacer(
	"à", "a", "â", "a", "ä", "a", "á", "a", "ç", "c", "é", "e", "è", "e", "ê", "e", "ë", "e",
	"î", "i", "ï", "i", "í", "i", "ô", "o", "ö", "o", "ó", "o", "ù", "u", "û", "u", "ü", "u", "ú", "u",
	"ÿ", "y", "ñ", "n", "œ", "oe", "æ", "ae", "ß", "ss", "ø", "o",
)

// fold turns a name into an email local part: lower case, ASCII, without spaces or apostrophes.
func fold(name string) string {
	s := folder.Replace(strings.ToLower(name))
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			return c
		}
		return -1
	}, s)
}

// ---- vocabulary

var (
	frenchFirst = []string{
		"Élodie", "Françoise", "Gaël", "Jérôme", "Hélène", "Noémie", "Zoé", "Chloé", "Loïc", "Anaïs", "Maëlle",
		"Cécile", "Benoît", "François", "Clément", "Théo", "Léa", "Inès", "Océane", "Jérémy", "Stéphane",
		"Frédéric", "Sébastien", "Aurélie", "Mélanie", "Séverine", "Raphaël", "Joël", "Adèle", "Agnès",
		"Bérénice", "Anne-Sophie", "Jean-François", "Marie-Hélène", "Éric", "Émile", "Étienne", "Gaëtan",
		"Hervé", "Irène", "Laëtitia", "Léon", "Lucie", "Marc", "Nathalie", "Pierre", "Thomas", "Camille",
		"Julien", "Sophie", "Nicolas", "Isabelle", "Manon", "Louis", "Margaux", "Yannick", "Solène", "Aurélien",
	}
	frenchLast = []string{
		"Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
		"Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
		"Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Legrand", "Garnier",
		"Faure", "Rousseau", "Blanc", "Guérin", "Chevalier", "Gauthier", "Perrin", "Clément", "Lemaître",
		"Hébert", "Gérard", "Brémond", "Le Goff", "Le Gall", "N'Diaye", "Ménard", "Joly", "Lécuyer",
		"Desprès", "Barthélemy", "Noël", "Aubé", "Pâris", "Cœur", "Bénard", "Lefèbvre", "Daudé", "Lévêque",
	}
	englishFirst = []string{
		"Emily", "James", "Olivia", "William", "Charlotte", "Oliver", "Amelia", "Harry", "Jack", "Sophia",
		"Daniel", "Grace", "Chloë", "Zoë", "Renée", "Noah", "Ruth", "Siobhán", "Seán", "Eóin", "Margaret", "Henry",
	}
	englishLast = []string{
		"Smith", "Johnson", "Williams", "Brown", "Jones", "Taylor", "Wilson", "Evans", "O'Brien", "Murphy",
		"Walsh", "Clarke", "Hughes", "Wright", "Ó Súilleabháin", "MacDonald", "Brontë", "Thompson",
	}
	otherTimezones = []string{
		"UTC", "Europe/London", "Europe/Brussels", "America/New_York", "America/Martinique",
		"Indian/Reunion", "Pacific/Noumea", "America/Cayenne", "Asia/Tokyo",
	}
	teamKinds  = []string{"Équipe", "Pôle", "Mission", "Cellule", "Bureau", "Service", "Groupe de travail", "Task force", "Squad"}
	teamTopics = []string{
		"Numérique", "Données", "Accessibilité", "Ressources humaines", "Communication", "Juridique", "Achats",
		"Sécurité", "Design", "Support", "Infrastructure", "Budget", "Formation", "Événements", "Urbanisme",
		"Écologie", "Santé", "Éducation", "Transports", "Culture",
	}
	externalDomains = []string{"partenaires.fr", "exemple.org", "prestataire.test", "consulting.example.net"}
	mailProviders   = []string{"gmail.com", "orange.fr", "free.fr", "laposte.net", "outlook.com", "proton.me"}
	employers       = []string{"Mairie de Lyon", "DINUM", "Région Bretagne", "ANSSI", "Université de Lille", "La Poste", "Acme SAS"}
	jobTitles       = []string{"Chargée de mission", "Développeur", "Designer", "Chef de projet", "Directrice", "Juriste", "Product manager"}
	notes           = []string{"Rencontré·e au salon.", "Préfère être appelé le matin.", "Met in London.", "Référent accessibilité.", "À relancer en septembre."}
	months          = []string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}
	streets         = []string{"rue de la Paix", "avenue Jean Jaurès", "boulevard Voltaire", "place de l'Hôtel de Ville", "rue des Écoles", "chemin des Prés", "allée Émile Zola"}
	cities          = []struct{ name, zip string }{
		{"Paris", "75011"}, {"Lyon", "69002"}, {"Marseille", "13001"}, {"Lille", "59000"}, {"Rennes", "35000"},
		{"Besançon", "25000"}, {"Orléans", "45000"}, {"Nîmes", "30000"}, {"Saint-Étienne", "42000"}, {"Angoulême", "16000"},
	}
	publicServices = []struct{ name, short, email string }{
		{"Accueil de la mairie", "Mairie", "accueil@mairie.example.com"},
		{"Support informatique", "Support", "support@demo.gouv.fr"},
		{"Standard du ministère", "Standard", "standard@demo.gouv.fr"},
		{"Service des ressources humaines", "RH", "rh@demo.gouv.fr"},
		{"Délégué à la protection des données", "DPO", "dpo@demo.gouv.fr"},
		{"Médiathèque Émile Zola", "Médiathèque", "mediatheque@mairie.example.com"},
		{"Préfecture — bureau des élections", "Élections", "elections@prefecture.example.com"},
		{"Service d'urbanisme", "Urbanisme", "urbanisme@mairie.example.com"},
	}
)
