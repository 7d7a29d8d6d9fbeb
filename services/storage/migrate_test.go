package storage_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
)

func TestMigrationsNumberedInOrder(t *testing.T) {
	for i, m := range storage.Migrations {
		if m.Version != uint32(i+1) || m.Name == "" || len(m.Steps) == 0 {
			t.Errorf("migration %d: version %d, name %q, %d steps", i, m.Version, m.Name, len(m.Steps))
		}
	}
}

func columns(t *testing.T, e storage.Engine, table string) map[string]string {
	t.Helper()
	var rows []struct {
		Name string `ch:"name"`
		Type string `ch:"type"`
	}
	if err := e.Select(context.Background(), &rows, storage.Query{
		SQL: "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = ?", Args: []any{table}}); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Name] = r.Type
	}
	return out
}

// TestMigrateFresh builds the schema on an empty database and checks every
// column the ingest service writes exists, and that a second run changes
// nothing.
func TestMigrateFresh(t *testing.T) {
	ctx := context.Background()
	e := storage.NewConn(testenv.ClickHouse(t))
	for range 2 {
		if err := storage.Migrate(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range storage.EventTables {
		cols := columns(t, e, table)
		for _, c := range storage.ColumnsOf(table) {
			if cols[c] == "" {
				t.Errorf("%s has no column %s", table, c)
			}
		}
		if cols["time_ns"] != "UInt32" {
			t.Errorf("%s.time_ns is %q, want UInt32", table, cols["time_ns"])
		}
	}
	applied, err := storage.Applied(ctx, e)
	if err != nil || len(applied) != len(storage.Migrations) {
		t.Fatalf("applied %v, %v", applied, err)
	}
}

// TestMigrateFromUnversioned starts from a database built before the
// migrations table existed (migrations 1 and 2 only, rows with
// milliseconds): Migrate records every version, adds time_ns, and the rows
// stored before read their nanoseconds from their milliseconds.
func TestMigrateFromUnversioned(t *testing.T) {
	ctx := context.Background()
	e := storage.NewConn(testenv.ClickHouse(t))
	for _, m := range storage.Migrations[:2] {
		for _, s := range m.Steps {
			if err := e.Exec(ctx, storage.Query{SQL: s.SQL}); err != nil {
				t.Fatal(err)
			}
		}
	}
	old := []string{"municipality", "publisher", "id", "service", "kpi", "value", "time", "time_ms", "source", "stream_seq", "ingested_at", "version"}
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	if err := e.Insert(ctx, storage.Measurements, old, [][]any{{"vic", "p", "e1", "s", "k", 1.0, at, uint16(250), "src", uint64(1), at, uint64(9)}}); err != nil {
		t.Fatal(err)
	}
	if err := storage.Migrate(ctx, e); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		NS uint32 `ch:"time_ns"`
		T  int64  `ch:"t"`
	}
	if err := e.Select(ctx, &got, storage.Query{SQL: "SELECT time_ns, " + storage.EventNS + " AS t FROM measurements"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].NS != 250_000_000 || got[0].T != at.Add(250*time.Millisecond).UnixNano() {
		t.Fatalf("old row reads %+v, want time_ns 250000000", got)
	}
	var all []uint32
	for _, m := range storage.Migrations {
		all = append(all, m.Version)
	}
	applied, err := storage.Applied(ctx, e)
	if err != nil || !slices.Equal(applied, all) {
		t.Fatalf("applied %v, %v", applied, err)
	}
}

// TestMigrateConcurrently runs Migrate from eight connections at once, as
// replicas starting together do: every run succeeds.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	c := testenv.ClickHouse(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- storage.Migrate(ctx, storage.NewConn(c)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if cols := columns(t, storage.NewConn(c), storage.Incidents); cols["time_ns"] != "UInt32" {
		t.Errorf("incidents.time_ns: %q", cols["time_ns"])
	}
}

// TestMigrateReportsTheStep: a failing step names its migration and
// statement.
func TestMigrateReportsTheStep(t *testing.T) {
	ctx := context.Background()
	e := storage.NewConn(testenv.ClickHouse(t))
	if err := e.Exec(ctx, storage.Query{SQL: "CREATE TABLE measurements (x UInt8) ENGINE = Memory"}); err != nil {
		t.Fatal(err)
	}
	err := storage.Migrate(ctx, e)
	if err == nil {
		t.Fatal("migrated over a foreign measurements table")
	}
	if want := "migration 3 (event times to the nanosecond)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
}
