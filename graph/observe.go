package graph

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"lasuite.fr/people/wire"
)

// CodeRateLimited refuses an operation over the caller's rate limit; extensions.retryAfter
// gives the seconds to wait, as the server's Retry-After header does.
const CodeRateLimited = wire.CodeRateLimited

// Observer lets the server log, count, trace and rate-limit operations, without graph
// knowing how. Options.Observer nil does none of it. Every method runs in the request's
// goroutine.
type Observer interface {
	// Admit is asked once per operation, after validation and the limits, before anything
	// runs. A positive retryAfter refuses the operation with RATE_LIMITED, to be retried after
	// that long.
	//
	// For a query, Admit may instead answer later: the query then runs while the observer
	// decides, and later is called once it has, before anything of its answer is sent; a
	// positive answer from later throws the answer away and refuses the query as above. A
	// mutation never runs before its answer: graph calls later at once.
	Admit(ctx context.Context, op Operation) (retryAfter time.Duration, later func() time.Duration)
	// Start is called as an admitted operation starts; its resolvers run in the context it
	// returns (one that carries a trace span, say).
	Start(ctx context.Context, op Operation) context.Context
	// Finish is called once per response, including requests refused before their operation
	// started (op then holds what is known, maybe nothing), with Start's context when Start
	// ran. It may add extensions to the response's errors.
	Finish(ctx context.Context, op Operation, resp *graphql.Response)
}

// Operation describes an operation to an Observer.
type Operation struct {
	Name string // operationName, as the client chose it: free text, to log, never to count
	Type string // query, mutation or subscription; empty when the request never parsed
	// Fields are the root fields the operation selects, in order, each one a field of the
	// schema (fragments at the root expanded, __typename left out): a bounded set of names.
	Fields []string
	// Throttled is true when a root field is one of People's throttled data (throttledFields).
	Throttled bool
}

// throttledFields are the root fields over the data People throttles with BURST_THROTTLE_RATES
// and SUSTAINED_THROTTLE_RATES: users, contacts, organizations and service providers.
var throttledFields = map[string]bool{
	"me": true, "users": true, "updateMe": true,
	"contacts": true, "contact": true, "createContact": true, "updateContact": true, "deleteContact": true,
	"organization": true, "updateOrganization": true,
	"serviceProviders": true,
}

// observe runs the Observer: Admit as the last check on the operation context (after the
// limits, so that a refused operation spends no token), Start around the operation, and
// Finish around every response.
type observe struct {
	observer Observer
	schema   *ast.Schema
}

var _ interface {
	graphql.OperationContextMutator
	graphql.OperationInterceptor
	graphql.ResponseInterceptor
} = observe{}

func (observe) ExtensionName() string                   { return "Observe" }
func (observe) Validate(graphql.ExecutableSchema) error { return nil }

func (o observe) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	op := o.describe(opCtx)
	wait, later := o.observer.Admit(ctx, op)
	if later != nil && op.Type != string(ast.Query) {
		wait, later = later(), nil
	}
	opCtx.Stats.SetExtension(statsKey, observed{op, later}) // for Start and Finish
	if wait <= 0 {
		return nil
	}
	return rateLimited(wait)
}

// rateLimited is the refusal of an operation over the caller's rate limit.
func rateLimited(wait time.Duration) *gqlerror.Error {
	secs := int(math.Ceil(wait.Seconds()))
	err := limitError(CodeRateLimited, nil, "too many requests: retry in %d seconds", secs)
	err.Extensions["retryAfter"] = secs
	return err
}

// observed is what MutateOperationContext learnt of an operation: its description, and the
// observer's answer to come for a query admitted before the answer.
type observed struct {
	op    Operation
	later func() time.Duration
}

func (o observe) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	return next(o.observer.Start(ctx, o.operation(graphql.GetOperationContext(ctx))))
}

func (o observe) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp != nil {
		var opCtx *graphql.OperationContext
		if graphql.HasOperationContext(ctx) {
			opCtx = graphql.GetOperationContext(ctx)
		}
		if ob, ok := o.observed(opCtx); ok && ob.later != nil {
			if wait := ob.later(); wait > 0 {
				// The query ran before its refusal: nothing of its answer goes out.
				resp = &graphql.Response{Errors: gqlerror.List{rateLimited(wait)}}
			}
		}
		o.observer.Finish(ctx, o.operation(opCtx), resp)
	}
	return resp
}

// statsKey holds an operation's description in its OperationContext's Stats, where gqlgen
// lets extensions keep what they know of an operation.
const statsKey = "Observe"

// operation is the description MutateOperationContext made, or, for a request refused before
// it, what is known so far.
func (o observe) operation(opCtx *graphql.OperationContext) Operation {
	if ob, ok := o.observed(opCtx); ok {
		return ob.op
	}
	return o.describe(opCtx)
}

// observed is what MutateOperationContext kept of the operation, if it ran.
func (observe) observed(opCtx *graphql.OperationContext) (observed, bool) {
	if opCtx == nil {
		return observed{}, false
	}
	ob, ok := opCtx.Stats.GetExtension(statsKey).(observed)
	return ob, ok
}

// describe reads what the operation context holds so far: nothing before the parameters were
// read, a name before the document parsed, and root fields once an operation was chosen. Names
// that are not fields of the schema (in a document that failed validation) are left out.
func (o observe) describe(opCtx *graphql.OperationContext) Operation {
	var op Operation
	if opCtx == nil {
		return op
	}
	op.Name = opCtx.OperationName
	if opCtx.Operation == nil {
		return op
	}
	op.Name = opCtx.Operation.Name // the document's, when operationName was left out
	op.Type = string(opCtx.Operation.Operation)
	var root *ast.Definition
	switch opCtx.Operation.Operation {
	case ast.Query:
		root = o.schema.Query
	case ast.Mutation:
		root = o.schema.Mutation
	case ast.Subscription:
		root = o.schema.Subscription
	}
	if root == nil {
		return op
	}
	var spread []string // fragments expanded: a spread cycle is invalid, but must not loop here
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				if sel.Name != "__typename" && !slices.Contains(op.Fields, sel.Name) && root.Fields.ForName(sel.Name) != nil {
					op.Fields = append(op.Fields, sel.Name)
					op.Throttled = op.Throttled || throttledFields[sel.Name]
				}
			case *ast.InlineFragment:
				walk(sel.SelectionSet)
			case *ast.FragmentSpread:
				if f := opCtx.Doc.Fragments.ForName(sel.Name); f != nil && !slices.Contains(spread, sel.Name) {
					spread = append(spread, sel.Name)
					walk(f.SelectionSet)
				}
			}
		}
	}
	walk(opCtx.Operation.SelectionSet)
	return op
}
