package reader_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/reader"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// TestCatalogueReadAgainWhenItChanges: one reader keeps the catalogue
// between evaluations, and sees a new registration, a copy of one stored
// by racing replicas (the first copy stands) and its merge at once.
func TestCatalogueReadAgainWhenItChanges(t *testing.T) {
	ctx := context.Background()
	db := database(t)
	old := T.Add(-200 * day)
	r := reader.New(db)
	services := func(m string) []string {
		t.Helper()
		in, err := r.Read(ctx, T, w, m)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range in.Municipalities["vic"].Input.Services {
			out = append(out, s.ID+"/"+s.Provider)
		}
		return out
	}
	storagetest.Store(t, db, register("vic", "a", contract.Council, time.Hour, old))
	if got := services(""); !slices.Equal(got, []string{"a/council"}) {
		t.Fatalf("services %v", got)
	}
	b := register("vic", "b", "p1", time.Hour, old)
	storagetest.Store(t, db, b)
	if got := services(""); !slices.Equal(got, []string{"a/council", "b/p1"}) {
		t.Errorf("after a registration: %v", got)
	}
	copyOfB := *b
	copyOfB.Data = &contract.ServiceRegistered{Service: "b", Name: "b", Area: "area-b", Delivery: contract.DeliveryConcession, Provider: "p2", ReportingIntervalSeconds: 3600}
	storagetest.Store(t, db, &copyOfB)
	if got := services("vic"); !slices.Equal(got, []string{"a/council", "b/p1"}) {
		t.Errorf("after a copy: %v; the first copy stands", got)
	}
	if err := db.Exec(ctx, storage.Query{SQL: "OPTIMIZE TABLE " + storage.Catalog + " FINAL"}); err != nil {
		t.Fatal(err)
	}
	if got := services(""); !slices.Equal(got, []string{"a/council", "b/p1"}) {
		t.Errorf("after the merge: %v", got)
	}
}
