package store

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// The prepared statements list their columns by hand (prepared.go); the models' fields are the
// reference, so that a new column cannot be forgotten there.
func TestPreparedColumnsFollowModels(t *testing.T) {
	tables := pgdialect.New().Tables()
	for _, tt := range []struct {
		model       reflect.Type
		alias, cols string
		dest        int
	}{
		{reflect.TypeFor[User](), "u", userColumnsSQL, len(new(userCols).dest())},
		{reflect.TypeFor[Team](), "t", teamColumnsSQL, len(teamDest(new(Team), nil, nil))},
	} {
		var want []string
		for _, f := range tables.Get(tt.model).Fields {
			want = append(want, tt.alias+"."+f.Name)
		}
		got := strings.FieldsFunc(tt.cols, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("columns of %v (-model +statement):\n%s", tt.model, diff)
		}
		if tt.dest != len(want) {
			t.Errorf("%v: %d scan destinations for %d columns", tt.model, tt.dest, len(want))
		}
	}
}
