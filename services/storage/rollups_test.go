package storage_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// TestRollupsOverExistingData migrates a database that already holds
// events: the measurement rollup is declared complete only from two days
// after its view was created (the rows stored before are not in it), the
// incident rollup is filled with the incidents stored before, and running
// the migration again, as a second process would, changes no answer.
func TestRollupsOverExistingData(t *testing.T) {
	ctx := context.Background()
	e := storage.NewConn(testenv.ClickHouse(t))
	var v4 storage.Migration
	for _, m := range storage.Migrations {
		if m.Name == "evaluation rollups" {
			v4 = m
			break
		}
		for _, s := range m.Steps { // a fresh database: every column is missing
			if err := e.Exec(ctx, storage.Query{SQL: s.SQL}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v4.Name == "" {
		t.Fatal("no migration creates the evaluation rollups")
	}
	at := time.Date(2026, 11, 20, 12, 0, 0, 500_000_000, time.UTC)
	storagetest.Store(t, e,
		storagetest.Event("vic", "p", at.Add(-time.Hour), &contract.KPIMeasured{Service: "s", KPI: "k", Value: 1}),
		storagetest.Event("vic", "p", at.Add(-3*time.Hour), &contract.IncidentOpened{Service: "s", Incident: "i", Priority: "high", ResolutionTargetSeconds: 3600}),
	)
	if err := storage.Migrate(ctx, e); err != nil {
		t.Fatal(err)
	}
	counted := []uint64{storage.ServiceHash(storage.Series{Municipality: "vic", Service: "s", Publisher: "p"})}
	check := func(when string) {
		t.Helper()
		var cov []storage.Coverage
		var want []struct {
			D uint32 `ch:"d"`
		}
		if err := e.Select(ctx, &cov, storage.MeasurementCoverage()); err != nil {
			t.Fatal(err)
		}
		if err := e.Select(ctx, &want, storage.Query{SQL: "SELECT toUInt32(today() + 2) AS d"}); err != nil {
			t.Fatal(err)
		}
		if len(cov) != 1 || cov[0].Rows == 0 || cov[0].FromDay != want[0].D {
			t.Errorf("%s: coverage %+v; want from day %d (two days after the view)", when, cov, want[0].D)
		}
		var inc []storage.IncidentState
		if err := e.Select(ctx, &inc, storage.IncidentsAt(at, 30*24*time.Hour, counted, "")); err != nil {
			t.Fatal(err)
		}
		wantInc := []storage.IncidentState{{Key: storage.Hash("vic", "s", "i"), ServiceHash: counted[0], Opened: at.Add(-3 * time.Hour).UnixNano(),
			Target: 3600, PriorityRank: 2}}
		if !reflect.DeepEqual(inc, wantInc) {
			t.Errorf("%s: incidents %+v; want the one stored before the migration, once", when, inc)
		}
		var ids []storage.IncidentID
		if err := e.Select(ctx, &ids, storage.IncidentIDs(inc)); err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0].Incident != "i" {
			t.Errorf("%s: ids %+v", when, ids)
		}
		var days []storage.Count
		if err := e.Select(ctx, &days, storage.Query{SQL: "SELECT sum(samples) AS n FROM " + storage.MeasurementDays}); err != nil {
			t.Fatal(err)
		}
		if days[0].N != 1 {
			t.Errorf("%s: %d measurements in the rollup; want only the one stored after the migration", when, days[0].N)
		}
	}
	storagetest.Store(t, e, storagetest.Event("vic", "p", at.Add(-2*time.Hour), &contract.KPIMeasured{Service: "s", KPI: "k", Value: 1}))
	check("after the migration")
	for _, s := range v4.Steps {
		if err := e.Exec(ctx, storage.Query{SQL: s.SQL}); err != nil {
			t.Fatal(err)
		}
	}
	check("after running it again")
}
