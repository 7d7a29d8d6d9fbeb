package reader_test

import (
	"context"
	"fmt"
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
// by racing replicas (the first copy stands) and its merge at once, and a
// registration once T has passed it.
func TestCatalogueReadAgainWhenItChanges(t *testing.T) {
	ctx := context.Background()
	db := database(t)
	old := T.Add(-200 * day)
	r := reader.New(db)
	servicesAt := func(at time.Time, m string) []string {
		t.Helper()
		in, err := r.Read(ctx, at, w, m)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range in.Municipalities["vic"].Input.Services {
			out = append(out, s.ID+"/"+s.Provider)
		}
		return out
	}
	services := func(m string) []string { t.Helper(); return servicesAt(T, m) }
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
	// A registration after T: in force from its instant on, whatever T
	// the reader saw before.
	storagetest.Store(t, db, register("vic", "c", contract.Council, time.Hour, T.Add(time.Hour)))
	for _, c := range []struct {
		at   time.Time
		want []string
	}{{T, []string{"a/council", "b/p1"}}, {T.Add(2 * time.Hour), []string{"a/council", "b/p1", "c/council"}}, {T, []string{"a/council", "b/p1"}}} {
		if got := servicesAt(c.at, ""); !slices.Equal(got, c.want) {
			t.Errorf("at %s: %v, want %v", c.at, got, c.want)
		}
	}
}

// TestConcurrentReads: evaluations of every municipality at two instants
// and of one municipality run at once on one reader, sharing what it
// keeps, and each gets what it would get alone (run with -race).
func TestConcurrentReads(t *testing.T) {
	ctx := context.Background()
	db := database(t)
	old := T.Add(-200 * day)
	storagetest.Store(t, db, register("vic", "a", "p", time.Hour, old), defineSLA("vic", "a", "k", old),
		measure("vic", "p", "a", "k", T.Add(-time.Hour), 3), register("vic", "b", contract.Council, time.Hour, T.Add(30*time.Minute)))
	r := reader.New(db)
	alone := map[time.Time]int{T: 1, T.Add(time.Hour): 2}
	errs := make(chan error, 12)
	for i := range 12 {
		go func() {
			at, m := T, ""
			switch i % 3 {
			case 1:
				at = T.Add(time.Hour)
			case 2:
				m = "vic"
			}
			in, err := r.Read(ctx, at, w, m)
			if err == nil && len(in.Municipalities["vic"].Input.Services) != alone[at] {
				err = fmt.Errorf("at %s: %d services, want %d", at, len(in.Municipalities["vic"].Input.Services), alone[at])
			}
			errs <- err
		}()
	}
	for range 12 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
