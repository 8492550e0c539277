package graph

import (
	"lasuite.fr/people/graph/model"
	"lasuite.fr/people/store"
)

// GraphQL enums are the upper-case spelling of what the database stores. TeamRole is bound to
// store.Role in gqlgen.yml (each value to its constant), so roles need no conversion: a role is
// read on every access of every team page.

var teamOrders = map[model.TeamOrder]store.TeamOrder{
	model.TeamOrderCreatedAtDesc: store.TeamOrderCreatedDesc,
	model.TeamOrderCreatedAtAsc:  store.TeamOrderCreatedAsc,
	model.TeamOrderNameAsc:       store.TeamOrderNameAsc,
	model.TeamOrderNameDesc:      store.TeamOrderNameDesc,
}

var accessOrders = map[model.TeamAccessOrder]store.AccessOrder{
	model.TeamAccessOrderRole:  store.AccessOrderRole,
	model.TeamAccessOrderName:  store.AccessOrderName,
	model.TeamAccessOrderEmail: store.AccessOrderEmail,
}

// roleOrMember reads an optional role argument; MEMBER is the schema's default.
func roleOrMember(r *store.Role) store.Role {
	if r == nil {
		return store.RoleMember
	}
	return *r
}
