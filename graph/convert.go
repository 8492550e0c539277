package graph

import (
	"strings"

	"lasuite.fr/people/graph/model"
	"lasuite.fr/people/store"
)

// GraphQL enums are the upper-case spelling of what the database stores.

func roleOut(r store.Role) model.TeamRole { return model.TeamRole(strings.ToUpper(string(r))) }

func roleIn(r model.TeamRole) store.Role { return store.Role(strings.ToLower(string(r))) }

func rolesOut(rs []store.Role) []model.TeamRole {
	out := make([]model.TeamRole, len(rs))
	for i, r := range rs {
		out[i] = roleOut(r)
	}
	return out
}

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

// optional turns a nullable string into "" for absent.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// roleOrMember reads an optional role argument; MEMBER is the schema's default.
func roleOrMember(r *model.TeamRole) store.Role {
	if r == nil {
		return store.RoleMember
	}
	return roleIn(*r)
}
