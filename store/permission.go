package store

import "slices"

// Role is a user's role in a team; the values are what the database stores.
type Role string

// The team roles, from most to least powerful.
const (
	RoleOwner         Role = "owner"
	RoleAdministrator Role = "administrator"
	RoleMember        Role = "member"
	// RoleInherited is no stored role: it is the viewer's in a strict ancestor of a team they
	// are in, which they may read and nothing more (People counts it as a member without
	// rights). Valid refuses it.
	RoleInherited Role = "inherited"
)

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleAdministrator || r == RoleMember }

// This file is the one place where team permissions are decided. Every store method that
// changes a team, its accesses or its invitations asks these functions inside the transaction
// that writes, and the API's abilities are computed by the same functions, so what a client is
// shown it may do is exactly what it will be allowed to do.

// TeamAbilities is what a viewer may do with a team.
type TeamAbilities struct {
	Get, Update, Delete, ManageAccesses bool
}

// teamAbilities follows People's Team.get_abilities: any member reads, owners and
// administrators edit and manage accesses, only owners delete. viewer "" is an outsider.
// Through a partner service's token a team is never deleted: People's resource server has no
// DELETE, since a team may be shared with several services.
func teamAbilities(viewer Role, viaService bool) TeamAbilities {
	manager := viewer == RoleOwner || viewer == RoleAdministrator
	return TeamAbilities{Get: viewer != "", Update: manager, Delete: viewer == RoleOwner && !viaService, ManageAccesses: manager}
}

// AccessAbilities is what a viewer may do with one team access.
type AccessAbilities struct {
	Delete    bool
	SetRoleTo []Role // roles the access may be changed to; never its current role
}

// accessAbilities follows People's TeamAccess.get_abilities, with one deliberate change: a
// plain member may leave a team (People lets nobody remove a member but owners and admins).
//   - An owner's access can be removed or demoted only by that owner, and only while another
//     owner remains, so a team never loses its last owner.
//   - Owners set any role on administrators and members; administrators set administrator or
//     member, so only owners make owners.
//   - A partner service's token changes no access: the API keeps that to browser sessions, as
//     People's resource server has no access endpoints.
func accessAbilities(viewer Role, viewerIsTarget bool, target Role, owners int, viaService bool) AccessAbilities {
	var a AccessAbilities
	switch {
	case viaService:
	case target == RoleOwner:
		if viewer == RoleOwner && viewerIsTarget && owners > 1 {
			a = AccessAbilities{Delete: true, SetRoleTo: []Role{RoleAdministrator, RoleMember}}
		}
	case viewer == RoleOwner:
		a = AccessAbilities{Delete: true, SetRoleTo: []Role{RoleOwner, RoleAdministrator, RoleMember}}
	case viewer == RoleAdministrator:
		a = AccessAbilities{Delete: true, SetRoleTo: []Role{RoleAdministrator, RoleMember}}
	case viewer == RoleMember && viewerIsTarget:
		a = AccessAbilities{Delete: true}
	}
	a.SetRoleTo = slices.DeleteFunc(a.SetRoleTo, func(r Role) bool { return r == target })
	return a
}

// canGrant reports whether viewer may give role to someone new, by access or by invitation.
// People lets administrators invite owners; here only owners make owners, by either path.
func canGrant(viewer, role Role) bool {
	switch viewer {
	case RoleOwner:
		return true
	case RoleAdministrator:
		return role != RoleOwner
	}
	return false
}

// staffAccessAbilities is what staff may do with any team's access, members or not: staff
// stand in for an owner who has left, so they set any role, owner included, and remove anyone,
// but the last-owner rule holds for them too: the only owner of a team can be neither removed
// nor demoted, by anyone. Add another owner first.
func staffAccessAbilities(target Role, owners int) AccessAbilities {
	if target == RoleOwner && owners <= 1 {
		return AccessAbilities{}
	}
	all := []Role{RoleOwner, RoleAdministrator, RoleMember}
	return AccessAbilities{Delete: true, SetRoleTo: slices.DeleteFunc(all, func(r Role) bool { return r == target })}
}
