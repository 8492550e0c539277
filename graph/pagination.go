package graph

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"lasuite.fr/people/graph/model"
	"lasuite.fr/people/store"
)

// Cursors are opaque to clients; inside they are positions in the list's stable order.
const cursorPrefix = "cursor:"

func encodeCursor(pos int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.Itoa(pos)))
}

// page turns Relay arguments into a store page: first defaults to 20 and may not exceed 100
// (a larger value is the client's error, not a silent cut).
func page(first *int, after *string) (store.Page, error) {
	p := store.Page{Limit: store.DefaultPageSize}
	if first != nil {
		if *first < 1 || *first > store.MaxPageSize {
			return p, badInput("first", "first must be between 1 and 100")
		}
		p.Limit = *first
	}
	if after != nil && *after != "" {
		raw, err := base64.RawURLEncoding.DecodeString(*after)
		pos, convErr := strconv.Atoi(strings.TrimPrefix(string(raw), cursorPrefix))
		if err != nil || !strings.HasPrefix(string(raw), cursorPrefix) || convErr != nil || pos < 0 {
			return p, badInput("after", "invalid cursor")
		}
		p.Offset = pos + 1
	}
	return p, nil
}

// connection builds the edges, nodes and page info of one page, in a connection field's
// resolver. Edges and cursors are made only when the field selects them: most clients read
// nodes, and a page of team members is read for every team of a page of teams.
func connection[T, E any](ctx context.Context, l store.List[T], edge func(cursor string, node T) E) ([]E, []T, *model.PageInfo) {
	edges := []E{}
	info := &model.PageInfo{HasNextPage: l.HasNext, HasPreviousPage: l.Offset > 0}
	if n := len(l.Items); n > 0 && selects(ctx, "pageInfo") {
		start, end := encodeCursor(l.Offset), encodeCursor(l.Offset+n-1)
		info.StartCursor, info.EndCursor = &start, &end
	}
	if selects(ctx, "edges") {
		edges = make([]E, len(l.Items))
		for i, n := range l.Items {
			edges[i] = edge(encodeCursor(l.Offset+i), n)
		}
	}
	return edges, l.Items, info
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
