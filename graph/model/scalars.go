// Package model holds the GraphQL types gqlgen generates (models_gen.go) and our scalars.
package model

import (
	"fmt"
	"io"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
)

// MarshalUUID writes an ID as its canonical UUID string.
func MarshalUUID(id uuid.UUID) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		io.WriteString(w, strconv.Quote(id.String()))
	})
}

// UnmarshalUUID reads an ID; anything but a UUID is the client's error (BAD_USER_INPUT), not
// an internal one.
func UnmarshalUUID(v any) (uuid.UUID, error) {
	s, ok := v.(string)
	if !ok {
		return uuid.Nil, &store.Error{Kind: store.KindInvalid, Message: fmt.Sprintf("an ID must be a UUID string, not %T", v)}
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, &store.Error{Kind: store.KindInvalid, Message: "an ID must be a UUID such as 123e4567-e89b-12d3-a456-426614174000"}
	}
	return id, nil
}
