package store_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// A logout token's (issuer, jti) is recorded once: the second time, concurrent or not, is a
// replay; another issuer's same jti is another token; a row past its expiry is pruned by the
// next record, so that the same jti may then come again; a logout that could not be carried out
// is forgotten.
func TestRecordLogoutToken(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := t.Context()
	issuer, jti := "https://op-"+storetest.Unique()+".example", "jti-"+storetest.Unique()
	later := time.Now().Add(10 * time.Minute)
	record := func(issuer, jti string, expires time.Time) bool {
		t.Helper()
		first, err := s.RecordLogoutToken(ctx, issuer, jti, expires)
		if err != nil {
			t.Fatalf("RecordLogoutToken(%s, %s) = %v", issuer, jti, err)
		}
		return first
	}

	var wg sync.WaitGroup
	firsts := make([]bool, 8)
	for i := range firsts {
		wg.Go(func() { firsts[i] = record(issuer, jti, later) })
	}
	wg.Wait()
	if n := len(slices.DeleteFunc(firsts, func(first bool) bool { return !first })); n != 1 {
		t.Errorf("8 concurrent records of one token: %d firsts, want exactly one", n)
	}
	if record(issuer, jti, later) {
		t.Error("a replay was recorded as new")
	}
	if !record(issuer+"/other", jti, later) {
		t.Error("another issuer's jti was taken for a replay")
	}

	old := "jti-" + storetest.Unique()
	if !record(issuer, old, time.Now().Add(-time.Minute)) {
		t.Fatal("an expired token's first record was taken for a replay")
	}
	record(issuer, "jti-"+storetest.Unique(), later) // prunes
	if n := (rules{t, s}).count("SELECT count(*) FROM logout_token_ids WHERE issuer = ? AND jti = ?", issuer, old); n != 0 {
		t.Errorf("the expired row is still there after another record")
	}

	if err := s.ForgetLogoutToken(ctx, issuer, jti); err != nil {
		t.Fatal(err)
	}
	if !record(issuer, jti, later) {
		t.Error("a forgotten token was taken for a replay")
	}

	for _, bad := range []string{"", strings.Repeat("j", store.MaxJTILength+1)} {
		if _, err := s.RecordLogoutToken(ctx, issuer, bad, later); store.KindOf(err) != store.KindInvalid {
			t.Errorf("jti of %d bytes: %v, want KindInvalid", len(bad), err)
		}
	}
}
