package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
)

// TestConverge stores the same identity twice, as two replicas racing on
// two copies would, and checks that Converge records it, merges it to one
// row where the first copy stands, and marks it resolved.
func TestConverge(t *testing.T) {
	ctx := context.Background()
	c := testenv.ClickHouse(t)
	if err := storage.Migrate(ctx, storage.NewConn(c)); err != nil {
		t.Fatal(err)
	}
	s := audited(t, store.New(c, 400*24*time.Hour, quiet))
	ev := func(v float64) *contract.Event {
		return &contract.Event{ID: "e1", Type: contract.TypeKPIMeasured, Time: time.Now().Add(-time.Hour),
			Municipality: "vic", Publisher: "aigues", Data: &contract.KPIMeasured{Service: "s", KPI: "k", Value: v}}
	}
	other := &contract.Event{ID: "e2", Type: contract.TypeKPIMeasured, Time: time.Now().Add(-time.Hour),
		Municipality: "vic", Publisher: "aigues", Data: &contract.KPIMeasured{Service: "s", KPI: "k", Value: 7}}
	if err := s.PrepareIndex(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Each writer records its rows in the index before inserting them;
	// Converge looks for copies among the index's hits.
	for _, rows := range [][]store.Row{{{Event: ev(1), StreamSeq: 10}, {Event: other, StreamSeq: 11}}, {{Event: ev(2), StreamSeq: 12}}} {
		if err := s.Remember(ctx, rows); err != nil {
			t.Fatal(err)
		}
		if err := s.Insert(ctx, rows); err != nil {
			t.Fatal(err)
		}
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

// TestInsertKeepsNanoseconds stores one event of each kind with a time
// that has nanoseconds, and reads each back exactly; Existing then finds
// every identity, in whichever table (the index filled from them).
func TestInsertKeepsNanoseconds(t *testing.T) {
	ctx := context.Background()
	c := testenv.ClickHouse(t)
	db := storage.NewConn(c)
	if err := storage.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	s := audited(t, store.New(c, 400*24*time.Hour, quiet))
	at := time.Date(2026, 11, 20, 11, 59, 59, 999_999_999, time.UTC)
	evs := []*contract.Event{
		{ID: "m", Type: contract.TypeKPIMeasured, Time: at, Municipality: "vic", Publisher: "aigues", Data: &contract.KPIMeasured{Service: "s", KPI: "k", Value: 1}},
		{ID: "c", Type: contract.TypeServiceRegistered, Time: at.Add(-1), Municipality: "vic", Publisher: contract.Council,
			Data: &contract.ServiceRegistered{Service: "s", Name: "S", Area: "water", Delivery: contract.DeliveryConcession, Provider: "aigues"}},
		{ID: "i", Type: contract.TypeIncidentOpened, Time: at.Add(-2), Municipality: "vic", Publisher: "aigues",
			Data: &contract.IncidentOpened{Service: "s", Incident: "x", Priority: "high", ResolutionTargetSeconds: 60}},
	}
	rows := make([]store.Row, len(evs))
	ids := make([]store.Identity, len(evs))
	for i, e := range evs {
		rows[i] = store.Row{Event: e, StreamSeq: uint64(i + 1), IngestedAt: at}
		ids[i] = rows[i].Identity()
	}
	if err := s.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	for i, table := range storage.EventTables {
		var got []struct {
			T  int64  `ch:"t"`
			MS uint16 `ch:"time_ms"`
		}
		if err := db.Select(ctx, &got, storage.Query{SQL: "SELECT " + storage.EventNS + " AS t, time_ms FROM " + table}); err != nil {
			t.Fatal(err)
		}
		want := at.Add(-time.Duration(i))
		if len(got) != 1 || got[0].T != want.UnixNano() || got[0].MS != 999 {
			t.Errorf("%s: %+v, want %d (time_ms 999)", table, got, want.UnixNano())
		}
	}
	if err := s.PrepareIndex(ctx, at); err != nil {
		t.Fatal(err)
	}
	found, err := s.Stored(ctx, append(ids, store.Identity{Municipality: "vic", Publisher: "aigues", ID: "other"}))
	if err != nil || len(found) != len(ids) {
		t.Fatalf("existing: %v %v", found, err)
	}
	for _, id := range ids {
		if !found[id] {
			t.Errorf("%+v not found", id)
		}
	}
}
