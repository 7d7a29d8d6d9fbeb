package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
	"github.com/assoliment/assoliment/services/ingest/schema"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// TestConverge stores the same identity twice, as two replicas racing on
// two copies would, and checks that Converge records it, merges it to one
// row where the first copy stands, and marks it resolved.
func TestConverge(t *testing.T) {
	ctx := context.Background()
	c := testenv.ClickHouse(t)
	if err := schema.Migrate(ctx, c); err != nil {
		t.Fatal(err)
	}
	s := store.New(c)
	ev := func(v float64) *contract.Event {
		return &contract.Event{ID: "e1", Type: contract.TypeKPIMeasured, Time: time.Now().Add(-time.Hour),
			Municipality: "vic", Publisher: "aigues", Data: &contract.KPIMeasured{Service: "s", KPI: "k", Value: v}}
	}
	other := &contract.Event{ID: "e2", Type: contract.TypeKPIMeasured, Time: time.Now().Add(-time.Hour),
		Municipality: "vic", Publisher: "aigues", Data: &contract.KPIMeasured{Service: "s", KPI: "k", Value: 7}}
	if err := s.Insert(ctx, []store.Row{{Event: ev(1), StreamSeq: 10}, {Event: other, StreamSeq: 11}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, []store.Row{{Event: ev(2), StreamSeq: 12}}); err != nil {
		t.Fatal(err)
	}
	ids := []store.Identity{{Municipality: "vic", Publisher: "aigues", ID: "e1"}, {Municipality: "vic", Publisher: "aigues", ID: "e2"}}
	n, err := s.Converge(ctx, ids)
	if err != nil || n != 1 {
		t.Fatalf("converge: %d %v", n, err)
	}
	var rows uint64
	var value float64
	if err := c.QueryRow(ctx, "SELECT count(), sum(value) FROM "+c.Table("measurements")+" WHERE id = 'e1'").Scan(&rows, &value); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || value != 1 {
		t.Fatalf("after converge: %d rows, value %v; want 1 row, the first copy (1)", rows, value)
	}
	var unresolved uint64
	if err := c.QueryRow(ctx, "SELECT countIf(resolved = 0) FROM "+c.Table("duplicates")+" FINAL").Scan(&unresolved); err != nil || unresolved != 0 {
		t.Fatalf("unresolved duplicates: %d %v", unresolved, err)
	}
	if n, err := s.Converge(ctx, ids); err != nil || n != 0 {
		t.Fatalf("second converge: %d %v", n, err)
	}
}
