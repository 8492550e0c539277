package main

import (
	"fmt"

	"lasuite.fr/people/graph"
)

// GraphQLSettings bound what one GraphQL request may ask (graph.Limits) and say who may
// introspect the schema.
type GraphQLSettings struct {
	MaxDepth          int    // GRAPHQL_MAX_DEPTH
	MaxIntrospection  int    // GRAPHQL_MAX_INTROSPECTION_DEPTH
	MaxComplexity     int    // GRAPHQL_MAX_COMPLEXITY
	MaxAliases        int    // GRAPHQL_MAX_ALIASES
	MaxOperationBytes int    // GRAPHQL_MAX_OPERATION_BYTES
	MaxBodyBytes      int    // GRAPHQL_MAX_BODY_BYTES
	Introspection     string // GRAPHQL_INTROSPECTION: auto, on or off
}

func (p *parser) graphql() GraphQLSettings {
	d := graph.DefaultLimits()
	g := GraphQLSettings{
		MaxDepth:          p.integer("GRAPHQL_MAX_DEPTH", d.MaxDepth, 1, 100),
		MaxIntrospection:  p.integer("GRAPHQL_MAX_INTROSPECTION_DEPTH", d.MaxIntrospectionDepth, 1, 100),
		MaxComplexity:     p.integer("GRAPHQL_MAX_COMPLEXITY", d.MaxComplexity, 1, 10_000_000),
		MaxAliases:        p.integer("GRAPHQL_MAX_ALIASES", d.MaxAliases, 1, 10_000),
		MaxOperationBytes: p.integer("GRAPHQL_MAX_OPERATION_BYTES", d.MaxOperationBytes, 256, 1<<20),
		MaxBodyBytes:      p.integer("GRAPHQL_MAX_BODY_BYTES", int(d.MaxBodyBytes), 1<<10, 100<<20),
		Introspection:     p.oneOf("GRAPHQL_INTROSPECTION", "auto", "auto", "on", "off"),
	}
	if g.MaxBodyBytes < g.MaxOperationBytes {
		p.errs = append(p.errs, fmt.Sprintf("GRAPHQL_MAX_BODY_BYTES (%d) must be at least GRAPHQL_MAX_OPERATION_BYTES (%d)", g.MaxBodyBytes, g.MaxOperationBytes))
	}
	return g
}

func (g GraphQLSettings) limits() graph.Limits {
	return graph.Limits{MaxDepth: g.MaxDepth, MaxIntrospectionDepth: g.MaxIntrospection, MaxComplexity: g.MaxComplexity, MaxAliases: g.MaxAliases,
		MaxOperationBytes: g.MaxOperationBytes, MaxBodyBytes: int64(g.MaxBodyBytes)}
}

// introspection resolves auto: on for a developer, staff only in production.
func (g GraphQLSettings) introspection(development bool) graph.Introspection {
	switch {
	case g.Introspection == "on" || g.Introspection == "auto" && development:
		return graph.IntrospectionOn
	case g.Introspection == "off":
		return graph.IntrospectionOff
	}
	return graph.IntrospectionStaff
}
