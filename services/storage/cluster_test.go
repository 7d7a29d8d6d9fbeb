package storage_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/internal/chdbengine"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

func TestReplicatedSQL(t *testing.T) {
	for in, want := range map[string]string{
		"CREATE TABLE IF NOT EXISTS m (a UInt8) ENGINE = ReplacingMergeTree(version)\nORDER BY a":                          "CREATE TABLE IF NOT EXISTS m (a UInt8) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/m', '{replica}', version)\nORDER BY a",
		"CREATE TABLE IF NOT EXISTS d (a UInt8) ENGINE = SummingMergeTree\nPARTITION BY a ORDER BY a":                      "CREATE TABLE IF NOT EXISTS d (a UInt8) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db/d', '{replica}')\nPARTITION BY a ORDER BY a",
		"CREATE TABLE k (a UInt8) ENGINE = MergeTree() ORDER BY a":                                                         "CREATE TABLE k (a UInt8) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/k', '{replica}') ORDER BY a",
		"CREATE TABLE IF NOT EXISTS s (h UInt64) ENGINE = Set":                                                             "CREATE TABLE IF NOT EXISTS s (h UInt64) ENGINE = Set",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS v TO d AS SELECT a FROM m":                                                 "CREATE MATERIALIZED VIEW IF NOT EXISTS v TO d AS SELECT a FROM m",
		"INSERT INTO d SELECT a FROM m":                                                                                    "INSERT INTO d SELECT a FROM m",
		"CREATE TABLE r (a UInt8) ENGINE = ReplicatedMergeTree('/x', '{replica}') ORDER BY a":                              "CREATE TABLE r (a UInt8) ENGINE = ReplicatedMergeTree('/x', '{replica}') ORDER BY a",
		"ALTER TABLE m ADD COLUMN b UInt32 DEFAULT toUInt32(a) AFTER a":                                                    "ALTER TABLE m ADD COLUMN b UInt32 DEFAULT toUInt32(a) AFTER a",
		"CREATE TABLE IF NOT EXISTS a (x AggregateFunction(minIf, Int64, UInt8)) ENGINE = AggregatingMergeTree ORDER BY x": "CREATE TABLE IF NOT EXISTS a (x AggregateFunction(minIf, Int64, UInt8)) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db/a', '{replica}') ORDER BY x",
	} {
		if got := storage.ReplicatedSQL(in, "db"); got != want {
			t.Errorf("ReplicatedSQL(%q)\n got %q\nwant %q", in, got, want)
		}
	}
	// Every table of the migrations is replicated, and only tables change.
	for _, m := range storage.Migrations {
		for _, s := range m.Steps {
			got := storage.ReplicatedSQL(s.SQL, "db")
			creates := strings.Contains(s.SQL, "CREATE TABLE")
			if creates != (got != s.SQL) {
				t.Errorf("migration %d: replicated %v, creates a table %v:\n%s", m.Version, got != s.SQL, creates, got)
			}
			if creates && !strings.Contains(got, "ENGINE = Replicated") {
				t.Errorf("migration %d: a table without a replicated engine:\n%s", m.Version, got)
			}
		}
	}
}

// TestReplicatedSchemaParsesOnCurrent parses every replicated statement on
// ClickHouse 26.5 (chDB, which cannot run a cluster: EXPLAIN AST parses
// without creating). The same statements run for real on 18.16 in
// TestClusterReplicas.
func TestReplicatedSchemaParsesOnCurrent(t *testing.T) {
	cur := current(t)
	n := 0
	for _, m := range storage.Migrations {
		for _, s := range m.Steps {
			sql := storage.ReplicatedSQL(s.SQL, "db")
			if sql == s.SQL {
				continue
			}
			out, err := cur.TSV(storage.Query{SQL: "EXPLAIN AST " + sql})
			if err != nil {
				t.Errorf("migration %d does not parse on 26.5: %v\n%s", m.Version, err, sql)
				continue
			}
			if !strings.Contains(out, "Function Replicated") {
				t.Errorf("migration %d: 26.5 parsed no replicated engine:\n%s", m.Version, out)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no replicated statement checked")
	}
}

// clusterEvents is a small history of every kind: catalogue, measurements
// of two series over three days, incidents opened and resolved, and two
// measurements of one series alike in everything but their id, in inserts
// of their own (identical rollup blocks, which a replicated target must
// not drop as a repeated insert).
func clusterEvents(at time.Time) [][]*contract.Event {
	ev := storagetest.Event
	reg := ev("vic", "council", at.Add(-72*time.Hour), &contract.ServiceRegistered{Service: "bus", Name: "Bus", Area: "mobilitat",
		Delivery: "concession", Provider: "moventis", ReportingIntervalSeconds: 3600})
	sla := ev("vic", "council", at.Add(-72*time.Hour), &contract.SLADefined{Service: "bus", KPI: "punctuality", Name: "Punctuality",
		Unit: "ratio", Direction: "higher_is_better", Target: 0.9, Objective: 0.95})
	batch := []*contract.Event{reg, sla}
	for h := range 72 {
		batch = append(batch, ev("vic", "moventis", at.Add(-time.Duration(h)*time.Hour), &contract.KPIMeasured{Service: "bus", KPI: "punctuality", Value: 0.8 + float64(h%5)*0.05}))
		batch = append(batch, ev("vic", "council", at.Add(-time.Duration(h)*time.Hour-time.Minute), &contract.KPIMeasured{Service: "bus", KPI: "waiting", Value: float64(h)}))
	}
	batch = append(batch,
		ev("vic", "moventis", at.Add(-5*time.Hour), &contract.IncidentOpened{Service: "bus", Incident: "i1", Priority: "high", ResolutionTargetSeconds: 7200}),
		ev("vic", "moventis", at.Add(-4*time.Hour), &contract.IncidentResolved{Service: "bus", Incident: "i1"}))
	same := func() []*contract.Event {
		return []*contract.Event{ev("vic", "moventis", at.Add(-30*time.Minute), &contract.KPIMeasured{Service: "bus", KPI: "punctuality", Value: 0.97})}
	}
	return [][]*contract.Event{batch, same(), same()}
}

// TestClusterReplicas migrates both replicas of a ClickHouse 18.16
// cluster with replicated engines (twice, and the second replica while
// the first holds data), stores a history through the first replica, and
// finds every table — events, rollups filled by the views, duplicates,
// level history — equal on both, row for row.
func TestClusterReplicas(t *testing.T) {
	c := testenv.ClickHouseCluster(t, 2)
	ctx := context.Background()
	db := testenv.Database()
	r1, r2 := storage.NewConn(c.Conn(0, db)), storage.NewConn(c.Conn(1, db))
	for range 2 {
		if err := storage.MigrateReplica(ctx, r1, testenv.ClusterName, db); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 10, 20, 12, 0, 0, 0, time.UTC)
	batches := clusterEvents(at)
	storagetest.Store(t, r1, batches[0]...)
	for _, e := range []storage.Engine{r2, r2} {
		if err := storage.MigrateReplica(ctx, e, testenv.ClusterName, db); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range batches[1:] {
		storagetest.Store(t, r1, b...)
	}
	if err := r1.Insert(ctx, storage.MaturityChanges, []string{"municipality", "from_level", "to_level", "evaluated_at", "failing", "recorded_at"},
		[][]any{{"vic", uint8(0), uint8(2), at, "c1,c2", at}}); err != nil {
		t.Fatal(err)
	}
	if err := r1.Insert(ctx, storage.Duplicates, storage.DuplicateColumns, [][]any{storage.DuplicateRow(storage.Identity{Municipality: "vic", Publisher: "moventis", ID: "x"}, true, at)}); err != nil {
		t.Fatal(err)
	}
	var tables []struct {
		Name   string `ch:"name"`
		Engine string `ch:"engine"`
	}
	if err := r1.Select(ctx, &tables, storage.Query{SQL: "SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND engine LIKE 'Replicated%' ORDER BY name"}); err != nil {
		t.Fatal(err)
	}
	var plain []storage.TableName
	if err := r1.Select(ctx, &plain, storage.Query{SQL: "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' AND engine NOT LIKE 'Replicated%'"}); err != nil {
		t.Fatal(err)
	}
	if len(plain) != 1 || plain[0].Name != storage.SchemaMigrations {
		t.Errorf("plain MergeTree tables %v, want only %s (each server's own record)", plain, storage.SchemaMigrations)
	}
	if len(tables) < 8 {
		t.Fatalf("replicated tables %v", tables)
	}
	dump := func(e storage.Engine, table, engine string) string {
		type row struct {
			R string `ch:"r"`
		}
		var rows []row
		final := " FINAL" // merges not done yet differ from one replica to the other
		if engine == "ReplicatedMergeTree" {
			final = ""
		}
		q := fmt.Sprintf("SELECT toString(tuple(*)) AS r FROM (SELECT * FROM %s%s) ORDER BY r", table, final)
		if err := e.Select(ctx, &rows, storage.Query{SQL: q}); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		var b strings.Builder
		for _, r := range rows {
			b.WriteString(r.R + "\n")
		}
		return b.String()
	}
	for _, tb := range tables {
		testenv.Eventually(t, tb.Name+" equal on both replicas", 60*time.Second, func() bool {
			return dump(r1, tb.Name, tb.Engine) == dump(r2, tb.Name, tb.Engine)
		})
		t.Logf("%s: %d rows on each replica", tb.Name, strings.Count(dump(r2, tb.Name, tb.Engine), "\n"))
	}
	// The replica names ZooKeeper holds, and the marks table, replicated.
	var names []storage.TableName
	if err := r1.Select(ctx, &names, storage.ReplicaNames(db, "01", storage.Measurements)); err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names[0].Name+names[1].Name != "r1r2" && names[0].Name+names[1].Name != "r2r1" {
		t.Errorf("replicas in ZooKeeper %v, want r1 and r2", names)
	}
	for _, e := range []storage.Engine{r1, r2} {
		if err := e.Exec(ctx, storage.CreateIndexMarks(db)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r1.Insert(ctx, storage.IndexMarks, storage.IndexMarkColumns, [][]any{storage.IndexMarkRow("r2", false, 7)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the mark on the other replica", 30*time.Second, func() bool {
		var m []storage.IndexMark
		return r2.Select(ctx, &m, storage.ReadIndexMarks()) == nil && len(m) == 1 && m[0].Stale()
	})
	for name, e := range map[string]storage.Engine{"r1": r1, "r2": r2} {
		var up []storage.CaughtUpRow
		testenv.Eventually(t, name+" caught up", 30*time.Second, func() bool {
			return e.Select(ctx, &up, storage.ReplicaCaughtUp()) == nil && len(up) == 1 && up[0].Tables > 8 && up[0].Behind == 0
		})
	}

	// The two alike measurements are two samples in the rollup.
	type samples struct {
		N uint64 `ch:"n"`
	}
	for name, e := range map[string]storage.Engine{"r1": r1, "r2": r2} {
		var got []samples
		if err := e.Select(ctx, &got, storage.Query{SQL: "SELECT toUInt64(sum(samples)) AS n FROM " + storage.MeasurementDays}); err != nil {
			t.Fatal(err)
		}
		if want := []samples{{N: 72*2 + 2}}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v samples in %s, want %v", name, got, storage.MeasurementDays, want)
		}
	}
}

// TestClusterNamedWrong: a server that does not know the cluster, or
// lacks the macros, is refused with the setting named.
func TestClusterNamedWrong(t *testing.T) {
	e := storage.NewConn(testenv.ClickHouse(t))
	err := storage.MigrateReplica(context.Background(), e, "nowhere", "db")
	if err == nil || !strings.Contains(err.Error(), "CLICKHOUSE_CLUSTER=nowhere") {
		t.Fatalf("got %v", err)
	}
}

// compareClusterQueries runs the cluster mode's queries on both engines of
// the single-server tests: those that read system tables (no macros, no
// cluster, no replicas there, on either) and the index marks, on a plain
// table of the same columns. The two that need ZooKeeper are parsed on
// 26.5 (EXPLAIN AST; chDB runs no cluster) and run on 18.16 with
// ZooKeeper by TestClusterReplicas.
func compareClusterQueries(t *testing.T, ss []side) {
	t.Helper()
	ctx := context.Background()
	same[storage.MacrosRow](t, "Macros", ss, storage.Macros(), true)
	type n struct {
		N uint64 `ch:"n"`
	}
	if got := same[n](t, "ClusterHosts", ss, storage.ClusterHosts(testenv.ClusterName), false); len(got) != 1 || got[0].N != 0 {
		t.Errorf("ClusterHosts on a server of no cluster: %+v", got)
	}
	if got := same[storage.CaughtUpRow](t, "ReplicaCaughtUp", ss, storage.ReplicaCaughtUp(), false); len(got) != 1 || got[0] != (storage.CaughtUpRow{}) {
		t.Errorf("ReplicaCaughtUp without replicated tables: %+v", got)
	}
	exec2(t, "IndexMarksSQL", ss, storage.Query{SQL: storage.IndexMarksSQL})
	for _, s := range ss {
		rows := [][]any{storage.IndexMarkRow("r1", false, 10), storage.IndexMarkRow("r1", true, 10), storage.IndexMarkRow("r1", false, 30),
			storage.IndexMarkRow("r2", false, 5), storage.IndexMarkRow("r2", true, 5)}
		if err := s.e.Insert(ctx, storage.IndexMarks, storage.IndexMarkColumns, rows); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	marks := same[storage.IndexMark](t, "ReadIndexMarks", ss, storage.ReadIndexMarks(), false)
	want := []storage.IndexMark{{Replica: "r1", Marked: 30, Repaired: 10}, {Replica: "r2", Marked: 5, Repaired: 5}}
	if !reflect.DeepEqual(marks, want) || !marks[0].Stale() || marks[1].Stale() {
		t.Errorf("index marks %+v, want %+v (r1 stale, r2 repaired)", marks, want)
	}
	for name, q := range map[string]storage.Query{
		"CreateIndexMarks": storage.CreateIndexMarks("db"),
		"ReplicaNames":     storage.ReplicaNames("db", "01", storage.Measurements),
	} {
		covered[name] = true
		for _, s := range ss {
			if s.name == "18.16" {
				continue // no EXPLAIN; run for real in TestClusterReplicas
			}
			sql, err := chdbengine.Bind(q.SQL, q.Args)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.tsv("EXPLAIN AST " + sql); err != nil {
				t.Errorf("%s does not parse on %s: %v\n%s", name, s.name, err, q.SQL)
			}
		}
	}
}
