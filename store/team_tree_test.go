package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// treeRow is what the database keeps of a team's place in the tree.
type treeRow struct {
	Path            string
	Depth, Numchild int
	ParentID        *uuid.UUID
}

func readTree(tb testing.TB, s *store.Store, id uuid.UUID) treeRow {
	tb.Helper()
	var r treeRow
	err := s.DB().QueryRowContext(context.Background(), "SELECT path, depth, numchild, parent_id FROM teams WHERE id = ?", id).
		Scan(&r.Path, &r.Depth, &r.Numchild, &r.ParentID)
	if err != nil {
		tb.Fatalf("read tree of %s: %v", id, err)
	}
	return r
}

// checkTreeConsistent checks, with plain SQL, every rule of People's materialised path in the
// organization: each path is the parent's and one step, depth follows, numchild counts.
func checkTreeConsistent(tb testing.TB, s *store.Store, org uuid.UUID) {
	tb.Helper()
	var bad []string
	err := s.DB().NewRaw(`SELECT t.name FROM teams t LEFT JOIN teams p ON p.id = t.parent_id
		WHERE t.organization_id = ? AND (
			(p.id IS NULL) <> (length(t.path) = 5)
			OR (p.id IS NOT NULL AND left(t.path, length(p.path)) <> p.path)
			OR (p.id IS NOT NULL AND length(t.path) <> length(p.path) + 5)
			OR t.depth <> length(t.path) / 5
			OR t.numchild <> (SELECT count(*) FROM teams c WHERE c.parent_id = t.id))`, org).Scan(context.Background(), &bad)
	if err != nil {
		tb.Fatal(err)
	}
	if len(bad) > 0 {
		tb.Errorf("teams out of place: %v", bad)
	}
}

func TestTeamTreePaths(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	root := storetest.Team(t, s, org, "Root")
	a := storetest.ChildTeam(t, s, root, "A")
	b := storetest.ChildTeam(t, s, root, "B")
	a1 := storetest.ChildTeam(t, s, a, "A1")
	rp := readTree(t, s, root).Path
	want := map[uuid.UUID]treeRow{
		root: {rp, 1, 2, nil},
		a:    {rp + "00001", 2, 1, &root},
		b:    {rp + "00002", 2, 0, &root},
		a1:   {rp + "0000100001", 3, 0, &a},
	}
	for id, w := range want {
		if diff := cmp.Diff(w, readTree(t, s, id)); diff != "" {
			t.Errorf("team %s (-want +got):\n%s", id, diff)
		}
	}

	// A moves under B with its child, then back to the roots.
	storetest.MustExec(t, s.DB(), "UPDATE teams SET parent_id = ? WHERE id = ?", b, a)
	if got := readTree(t, s, a1); got.Path != rp+"000020000100001" || got.Depth != 4 {
		t.Errorf("A1 after the move: %+v", got)
	}
	checkTreeConsistent(t, s, org)
	storetest.MustExec(t, s.DB(), "UPDATE teams SET parent_id = NULL WHERE id = ?", a)
	if got := readTree(t, s, a1); got.Depth != 2 || len(got.Path) != 10 {
		t.Errorf("A1 after A became a root: %+v", got)
	}
	checkTreeConsistent(t, s, org)

	// An import from People gives its own paths: kept when they fit the parent's.
	imported := rp + "000zz"
	var id uuid.UUID
	if err := s.DB().QueryRowContext(t.Context(), "INSERT INTO teams (name, organization_id, parent_id, path) VALUES ('Imported', ?, ?, ?) RETURNING id",
		org, root, imported).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, s, id); got.Path != imported || got.Depth != 2 {
		t.Errorf("imported team: %+v", got)
	}
	if got := readTree(t, s, storetest.ChildTeam(t, s, root, "After the import")).Path; got != rp+"00100" {
		t.Errorf("next child after an imported step: %s, want %s", got, rp+"00100")
	}
	checkTreeConsistent(t, s, org)
}

// The database itself refuses what would break the tree, whoever writes.
func TestTeamTreeRefusals(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	org, other := storetest.Organization(t, s), storetest.Organization(t, s)
	root := storetest.Team(t, s, org, "Root")
	child := storetest.ChildTeam(t, s, root, "Child")
	grandchild := storetest.ChildTeam(t, s, child, "Grandchild")
	foreign := storetest.Team(t, s, other, "Foreign")
	for _, tt := range []struct {
		name, sql  string
		args       []any
		constraint string
	}{
		{"under itself", "UPDATE teams SET parent_id = id WHERE id = ?", []any{root}, "teams_parent_cycle_check"},
		{"under its grandchild", "UPDATE teams SET parent_id = ? WHERE id = ?", []any{grandchild, root}, "teams_parent_cycle_check"},
		{"under another organization's team", "UPDATE teams SET parent_id = ? WHERE id = ?", []any{foreign, child}, "teams_parent_organization_check"},
		{"created under another organization's team", "INSERT INTO teams (name, organization_id, parent_id) VALUES ('x', ?, ?)", []any{org, foreign}, "teams_parent_organization_check"},
		{"under a missing team", "UPDATE teams SET parent_id = ? WHERE id = ?", []any{uuid.New(), child}, "teams_parent_exists_check"},
		{"path written by hand", "UPDATE teams SET path = 'zzzzz' WHERE id = ?", []any{root}, "teams_tree_check"},
		{"numchild written by hand", "UPDATE teams SET numchild = 7 WHERE id = ?", []any{root}, "teams_tree_check"},
		{"imported path outside the parent's", "INSERT INTO teams (name, organization_id, parent_id, path) VALUES ('x', ?, ?, 'zzzzzzzzzz')", []any{org, root}, "teams_path_check"},
		{"organization changed under a parent", "UPDATE teams SET organization_id = ? WHERE id = ?", []any{other, child}, "teams_parent_organization_check"},
		{"parent deleted alone", "DELETE FROM teams WHERE id = ?", []any{child}, "teams_parent_id_fkey"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.DB().ExecContext(t.Context(), tt.sql, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.constraint) && !strings.Contains(fmt.Sprintf("%#v", err), tt.constraint) {
				t.Errorf("err = %v, want a violation of %s", err, tt.constraint)
			}
		})
	}
	checkTreeConsistent(t, s, org)
}

// Two moves that would make a cycle, A under B and B under A, started at once: one succeeds,
// the other is refused, and the tree stays consistent. Through the store (which takes the tree
// lock first, so the loser always meets the cycle check) and with plain SQL (the triggers'
// lock alone).
func TestConcurrentMovesCannotMakeACycle(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	for _, through := range []string{"store", "sql"} {
		for round := range 5 {
			t.Run(fmt.Sprintf("%s %d", through, round), func(t *testing.T) {
				tm := storetest.TeamWithEveryRole(t, s)
				a := storetest.ChildTeam(t, s, tm.ID, "A")
				b := storetest.ChildTeam(t, s, tm.ID, "B")
				storetest.Access(t, s, a, tm.Owner, store.RoleOwner)
				storetest.Access(t, s, b, tm.Owner, store.RoleOwner)
				move := func(id, parent uuid.UUID) error {
					if through == "store" {
						_, err := s.MoveTeam(context.Background(), store.UserActor(tm.Owner), id, &parent)
						return err
					}
					_, err := s.DB().ExecContext(context.Background(), "UPDATE teams SET parent_id = ? WHERE id = ?", parent, id)
					return err
				}
				start := make(chan struct{})
				errs := make([]error, 2)
				var wg sync.WaitGroup
				for i, m := range [][2]uuid.UUID{{a, b}, {b, a}} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						errs[i] = move(m[0], m[1])
					}()
				}
				close(start)
				wg.Wait()
				if (errs[0] == nil) == (errs[1] == nil) {
					t.Fatalf("errors %v: want exactly one move to succeed", errs)
				}
				failed := errs[0]
				if failed == nil {
					failed = errs[1]
				}
				if through == "store" && store.KindOf(failed) != store.KindInvalid {
					t.Errorf("refused move: kind %v (%v), want invalid", store.KindOf(failed), failed)
				} else if through == "sql" && !strings.Contains(failed.Error(), "descendants") && !strings.Contains(failed.Error(), "40P01") {
					// Without the store's lock ordering, a writer may also lose a deadlock
					// (the row it updates against the lock it waits for): refused all the same.
					t.Errorf("refused move: %v, want the cycle check or a deadlock", failed)
				}
				checkTreeConsistent(t, s, tm.Org)
			})
		}
	}
}

// Children created at once under one parent get distinct paths and the right count.
func TestConcurrentChildCreates(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	tm := storetest.TeamWithEveryRole(t, s)
	const n = 8
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.CreateTeam(context.Background(), store.UserActor(tm.Admin), store.NewTeam{Name: fmt.Sprint("Child ", i), ParentID: &tm.ID})
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := readTree(t, s, tm.ID).Numchild; got != n {
		t.Errorf("numchild = %d, want %d", got, n)
	}
	checkTreeConsistent(t, s, tm.Org)
}

func TestCreateAndMoveTeamPermissions(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := t.Context()
	tm := storetest.TeamWithEveryRole(t, s)
	other := storetest.TeamWithEveryRole(t, s)
	sibling := storetest.Team(t, s, tm.Org, "Sibling")
	storetest.Access(t, s, sibling, tm.Member, store.RoleOwner)
	for _, tt := range []struct {
		name   string
		actor  uuid.UUID
		parent uuid.UUID
		want   store.Kind
	}{
		{"owner", tm.Owner, tm.ID, 0},
		{"administrator", tm.Admin, tm.ID, 0},
		{"member", tm.Member, tm.ID, store.KindForbidden},
		{"outsider", tm.Outsider, tm.ID, store.KindNotFound},
		{"owner of another organization's team", other.Owner, tm.ID, store.KindNotFound},
	} {
		_, err := s.CreateTeam(ctx, store.UserActor(tt.actor), store.NewTeam{Name: "Child", ParentID: &tt.parent})
		if got := store.KindOf(err); got != tt.want {
			t.Errorf("create as %s: kind %v, want %v (%v)", tt.name, got, tt.want, err)
		}
	}
	// Moving needs a manager's role in both teams.
	if _, err := s.MoveTeam(ctx, store.UserActor(tm.Member), sibling, &tm.ID); store.KindOf(err) != store.KindForbidden {
		t.Errorf("owner of the team, member of the parent: %v, want forbidden", err)
	}
	if _, err := s.MoveTeam(ctx, store.UserActor(tm.Owner), sibling, &tm.ID); store.KindOf(err) != store.KindNotFound {
		t.Errorf("owner of the parent, outsider of the team: %v, want not found", err)
	}
	storetest.Access(t, s, sibling, tm.Owner, store.RoleAdministrator)
	moved, err := s.MoveTeam(ctx, store.UserActor(tm.Owner), sibling, &tm.ID)
	if err != nil {
		t.Fatal(err)
	}
	if moved.ParentID == nil || *moved.ParentID != tm.ID || moved.Depth != 2 {
		t.Errorf("moved team: parent %v depth %d", moved.ParentID, moved.Depth)
	}
	if _, err := s.MoveTeam(ctx, store.Actor{UserID: tm.Owner, ServiceProviderID: storetest.ServiceProvider(t, s), Method: store.ActorBearer}, sibling, nil); store.KindOf(err) != store.KindForbidden {
		t.Errorf("through a partner: %v, want forbidden", err)
	}
	if _, err := s.MoveTeam(ctx, store.UserActor(tm.Owner), sibling, nil); err != nil {
		t.Errorf("back to the roots: %v", err)
	}
	checkTreeConsistent(t, s, tm.Org)
}

// A member of a team sees its strict ancestors, inherited and read-only, and neither uncles,
// siblings nor descendants; partners see the same tree through the service filter. Both ways
// of reading teams agree.
func TestVisibleTeamsTree(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	user := storetest.User(t, s, org).ID
	sp := storetest.ServiceProvider(t, s)
	root := storetest.Team(t, s, org, "Root")
	parent := storetest.ChildTeam(t, s, root, "Parent")
	uncle := storetest.ChildTeam(t, s, root, "Uncle")
	mine := storetest.ChildTeam(t, s, parent, "Mine")
	sibling := storetest.ChildTeam(t, s, parent, "Sibling")
	below := storetest.ChildTeam(t, s, mine, "Below")
	storetest.Access(t, s, mine, user, store.RoleMember)
	storetest.MustExec(t, s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id IN (?, ?)", root, mine)
	// Someone of another organization in the same team sees no ancestor (as People).
	stranger := storetest.User(t, s, storetest.Organization(t, s)).ID
	storetest.Access(t, s, mine, stranger, store.RoleMember)
	ids := []uuid.UUID{root, parent, uncle, mine, sibling, below}
	sorted := func(ids ...uuid.UUID) []uuid.UUID {
		return slices.SortedFunc(slices.Values(ids), func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	}
	partner := store.Actor{UserID: user, ServiceProviderID: sp, Method: store.ActorBearer}
	for _, tt := range []struct {
		name      string
		actor     store.Actor
		ancestors bool
		want      []uuid.UUID
	}{
		{"own teams", store.UserActor(user), false, sorted(mine)},
		{"with ancestors", store.UserActor(user), true, sorted(root, parent, mine)},
		{"partner with ancestors", partner, true, sorted(root, mine)},
		{"member of another organization", store.UserActor(stranger), true, sorted(mine)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			viaBun, viaPrepared, err := store.VisibleTeamIDs(t.Context(), s, tt.actor, ids, tt.ancestors)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, viaBun, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("bun reads (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, viaPrepared, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("prepared reads (-want +got):\n%s", diff)
			}
		})
	}
	// The ancestor reads as an inherited member, with no right but reading.
	v, err := s.TeamByID(t.Context(), store.UserActor(user), parent)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Inherited() || v.Role() != store.RoleMember || v.Abilities() != (store.TeamAbilities{Get: true}) {
		t.Errorf("ancestor: inherited %v role %s abilities %+v", v.Inherited(), v.Role(), v.Abilities())
	}
	if _, err := s.UpdateTeam(t.Context(), store.UserActor(user), parent, store.TeamUpdate{Name: ptr("Renamed")}); store.KindOf(err) != store.KindForbidden {
		t.Errorf("update an ancestor: %v, want forbidden", err)
	}
	if _, err := s.TeamByID(t.Context(), store.UserActor(user), below); store.KindOf(err) != store.KindNotFound {
		t.Errorf("read a descendant: %v, want not found", err)
	}
	_, accesses, err := s.TeamWithAccesses(t.Context(), store.UserActor(user), parent, store.TeamShape{}, store.AccessFilter{Page: store.Page{Limit: 10}})
	if err != nil || len(accesses.Items) != 0 || accesses.Total != 0 {
		t.Errorf("an ancestor's accesses: %d shown of %d (%v), want none", len(accesses.Items), accesses.Total, err)
	}
	anc, err := s.TeamAncestorsByIDs(t.Context(), store.UserActor(user), []uuid.UUID{below, mine})
	if err != nil {
		t.Fatal(err)
	}
	var got []uuid.UUID
	for _, a := range anc[mine] {
		got = append(got, a.ID)
	}
	if diff := cmp.Diff([]uuid.UUID{root, parent}, got); diff != "" {
		t.Errorf("ancestors of Mine (-want +got):\n%s", diff)
	}
	kids, err := s.TeamChildren(t.Context(), store.UserActor(user), parent, store.Page{Limit: 10})
	if err != nil || len(kids.Items) != 1 || kids.Items[0].ID != mine {
		t.Errorf("children of Parent seen: %+v (%v), want Mine only", kids.Items, err)
	}
}

// Deleting a team with children needs cascade; a cascade deletes the subtree and announces
// every removed membership to its team's webhooks.
func TestDeleteTeamCascade(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := t.Context()
	tm := storetest.TeamWithEveryRole(t, s)
	child := storetest.ChildTeam(t, s, tm.ID, "Child")
	grandchild := storetest.ChildTeam(t, s, child, "Grandchild")
	storetest.ChildTeam(t, s, tm.ID, "Second child")
	somebody := storetest.User(t, s, tm.Org).ID
	storetest.Access(t, s, grandchild, somebody, store.RoleOwner)
	for _, team := range []uuid.UUID{tm.ID, grandchild} {
		storetest.MustExec(t, s.DB(), "INSERT INTO team_webhooks (team_id, url, protocol) VALUES (?, ?, 'scim')", team, "https://hooks.example.test/"+storetest.Unique())
	}

	_, err := s.DeleteTeam(ctx, store.UserActor(tm.Owner), tm.ID, false)
	if store.KindOf(err) != store.KindConflict || !strings.Contains(err.Error(), "2 child teams") {
		t.Fatalf("delete without cascade: %v, want a conflict naming 2 children", err)
	}
	if _, err := s.DeleteTeam(ctx, store.UserActor(tm.Admin), tm.ID, true); store.KindOf(err) != store.KindForbidden {
		t.Errorf("administrator cascades: %v, want forbidden", err)
	}
	ids, err := s.DeleteTeam(ctx, store.UserActor(tm.Owner), tm.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 4 || ids[0] != tm.ID {
		t.Errorf("deleted %v, want the team first and its 3 descendants", ids)
	}
	var removals []string
	err = s.DB().NewRaw(`SELECT team_id::text || ' ' || user_id::text FROM team_webhook_deliveries
		WHERE team_id IN (?, ?) AND operation = 'remove' ORDER BY 1`, tm.ID, grandchild).Scan(ctx, &removals)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{}
	for _, u := range []uuid.UUID{tm.Owner, tm.Admin, tm.Member} {
		want = append(want, tm.ID.String()+" "+u.String())
	}
	want = append(want, grandchild.String()+" "+somebody.String())
	slices.Sort(want)
	if diff := cmp.Diff(want, removals); diff != "" {
		t.Errorf("removals queued (-want +got):\n%s", diff)
	}
}
