package store

import "github.com/uptrace/bun"

// MaxPageSize bounds every list: a larger request is a client error, not a silent cut.
const MaxPageSize = 100

// DefaultPageSize applies when a client does not ask for a size.
const DefaultPageSize = 20

// Page selects a window of a list in its stable order.
type Page struct {
	Limit  int // 1..MaxPageSize
	Offset int // rows to skip
}

// List is one page of a list and where it stands in the whole.
type List[T any] struct {
	Items   []T
	Total   int  // rows in the whole list
	Offset  int  // position of Items[0] in the whole list
	HasNext bool // rows exist after this page
}

// CheckPage validates a page request; field names the argument for the client.
func CheckPage(p Page) error {
	if p.Limit < 1 || p.Limit > MaxPageSize {
		return invalid("first", "first must be between 1 and 100")
	}
	if p.Offset < 0 {
		return invalid("after", "invalid cursor")
	}
	return nil
}

// counted is a row that also carries the size of the whole list (count(*) OVER ()), so a page
// and its total cost one statement.
type counted interface{ total() int }

func newList[T any, R counted](p Page, rows []R, item func(R) T) List[T] {
	l := List[T]{Offset: p.Offset, Items: make([]T, 0, min(len(rows), p.Limit))}
	for i, r := range rows {
		if i == p.Limit {
			l.HasNext = true
			break
		}
		l.Items = append(l.Items, item(r))
	}
	if len(rows) > 0 {
		l.Total = rows[0].total()
	}
	return l
}

// Total is embedded in list rows to receive count(*) OVER ().
type Total struct {
	Count int `bun:"total_count,scanonly"`
}

func (t Total) total() int { return t.Count }

// window applies the page to an ordered query, asking one row more to learn HasNext.
func (p Page) window(q *bun.SelectQuery) *bun.SelectQuery {
	return q.Limit(int64(p.Limit) + 1).Offset(int64(p.Offset))
}
