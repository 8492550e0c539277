package rest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"lasuite.fr/people/store"
)

// page is People's page of a list (DRF's PageNumberPagination with page_size_query_param and a
// maximum of 100): {"count", "next", "previous", "results"}.
type page[T any] struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []T     `json:"results"`
}

// pageRequest is the page a client asked for with ?page= and ?page_size=.
type pageRequest struct {
	number int  // from 1
	last   bool // ?page=last: DRF's word for the last page, whatever its number
	size   int
}

// readPage reads ?page and ?page_size as DRF does: a page_size that is not a positive integer
// takes the default, one above 100 is cut to 100; a page that is not a positive integer is
// invalid (ok false).
func readPage(q url.Values) (p pageRequest, ok bool) {
	p.number, p.size = 1, store.DefaultPageSize
	if v := q.Get("page_size"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			p.size = min(n, store.MaxPageSize)
		}
	}
	v, set := q["page"]
	switch {
	case !set:
		return p, true
	case v[0] == "last":
		p.last = true
		return p, true
	}
	n, err := strconv.Atoi(strings.TrimSpace(v[0]))
	if err != nil || n < 1 {
		return p, false
	}
	p.number = n
	return p, true
}

func (p pageRequest) storePage() store.Page {
	return store.Page{Limit: p.size, Offset: (p.number - 1) * p.size}
}

// numPages is how many pages a list of total items makes: at least one, the empty first page.
func (p pageRequest) numPages(total int) int { return max(1, (total+p.size-1)/p.size) }

// list reads one page through read, answering 404 {"detail":"Invalid page."} for a page past
// the end (but the first) or not a number, as DRF does; ?page=last reads the count first. It
// answers the client itself and returns false on any error; the store's errors are answered
// with notFound for KindNotFound.
func list[T, R any](h *Handler, w http.ResponseWriter, r *http.Request, notFound string,
	read func(store.Page) (store.List[R], error), item func(R) T) (page[T], bool) {
	q := r.URL.Query()
	p, ok := readPage(q)
	if !ok {
		respondError(w, r, http.StatusNotFound, "Invalid page.")
		return page[T]{}, false
	}
	l, err := read(p.storePage())
	if err == nil && p.last {
		if p.number = p.numPages(l.Total); p.number > 1 {
			l, err = read(p.storePage())
		}
	}
	if err != nil {
		h.storeError(w, r, err, notFound)
		return page[T]{}, false
	}
	if p.number > p.numPages(l.Total) {
		respondError(w, r, http.StatusNotFound, "Invalid page.")
		return page[T]{}, false
	}
	out := page[T]{Count: l.Total, Results: make([]T, 0, len(l.Items))}
	for _, it := range l.Items {
		out.Results = append(out.Results, item(it))
	}
	if l.HasNext {
		out.Next = h.pageURL(r, q, p.number+1)
	}
	if p.number > 1 {
		out.Previous = h.pageURL(r, q, p.number-1)
	}
	return out, true
}

// pageURL is the absolute URL of the request with another page, as DRF writes it: its query
// with ?page replaced (or, for the first page, removed), the parameters sorted by name.
func (h *Handler) pageURL(r *http.Request, q url.Values, number int) *string {
	v := make(url.Values, len(q))
	for k, vs := range q {
		v[k] = vs
	}
	if number == 1 {
		v.Del("page")
	} else {
		v.Set("page", strconv.Itoa(number))
	}
	u := h.opts.PublicURL + r.URL.EscapedPath()
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	return &u
}
