// Package model holds the GraphQL types gqlgen generates (models_gen.go) and our scalars.
package model

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
)

// MarshalUUID writes an ID as its canonical UUID string.
func MarshalUUID(id uuid.UUID) graphql.Marshaler { return quotedUUID(id) }

// quotedUUID writes a UUID as a JSON string without allocating it first: every object of a page
// has its ID.
type quotedUUID uuid.UUID

func (q quotedUUID) MarshalGQL(w io.Writer) {
	if buf, ok := w.(*bytes.Buffer); ok { // gqlgen's response buffer
		buf.Write(appendQuotedUUID(buf.AvailableBuffer(), q))
		return
	}
	w.Write(appendQuotedUUID(nil, q))
}

func appendQuotedUUID(b []byte, q quotedUUID) []byte {
	var s [36]byte
	hex.Encode(s[0:8], q[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], q[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], q[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], q[8:10])
	s[23] = '-'
	hex.Encode(s[24:], q[10:])
	b = append(b, '"')
	b = append(b, s[:]...)
	return append(b, '"')
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
