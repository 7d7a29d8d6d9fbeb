package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/internal/chdbengine"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// The same statements run on two engines: the ClickHouse 18.16 server of
// the tests and chDB, ClickHouse 26.5 in the process. Every query builder
// of this package, the migrations, the inserts of both services and the
// SQL of the Grafana ClickHouse panels run on both over the same fixtures,
// and their results must be equal.

var (
	chdbOnce sync.Once
	chdbSess *chdbengine.Session
	chdbErr  error
	chdbDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if chdbSess != nil {
		chdbSess.Close()
	}
	if chdbDir != "" {
		os.RemoveAll(chdbDir)
	}
	os.Exit(code)
}

// current returns an engine on a fresh database of chDB.
func current(t *testing.T) *chdbengine.Engine {
	t.Helper()
	chdbOnce.Do(func() {
		chdbDir, chdbErr = os.MkdirTemp("", "storage-chdb")
		if chdbErr == nil {
			chdbSess, chdbErr = chdbengine.Open(chdbDir)
		}
	})
	if chdbErr != nil {
		t.Fatalf("chDB: %v", chdbErr)
	}
	db := fmt.Sprintf("test_%d", time.Now().UnixNano())
	e, err := chdbSess.Database(db)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// side is one engine with a way to read any query as TSV.
type side struct {
	name string
	e    storage.Engine
	tsv  func(sql string) (string, error)
}

// sides returns both engines, each on a fresh, migrated database.
func sides(t *testing.T) []side {
	t.Helper()
	c := testenv.ClickHouse(t)
	old := side{name: "18.16", e: storage.NewConn(c), tsv: func(sql string) (string, error) { return clientTSV(c.Database, sql) }}
	cur := current(t)
	now := side{name: "26.5", e: cur, tsv: func(sql string) (string, error) { return cur.TSV(storage.Query{SQL: sql}) }}
	if v, err := chdbSess.Version(); err != nil || !strings.HasPrefix(v, "26.") {
		t.Fatalf("chDB version %q, %v; want 26.x", v, err)
	}
	var vs []struct {
		V string `ch:"v"`
	}
	if err := old.e.Select(context.Background(), &vs, storage.Query{SQL: "SELECT version() AS v"}); err != nil || len(vs) != 1 || !strings.HasPrefix(vs[0].V, "18.16") {
		t.Fatalf("server version %v, %v; want 18.16", vs, err)
	}
	out := []side{old, now}
	for _, s := range out {
		if err := storage.Migrate(context.Background(), s.e); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	return out
}

// clientTSV runs sql in db on the test server with clickhouse-client.
func clientTSV(db, sql string) (string, error) {
	host, port, err := net.SplitHostPort(testenv.ClickHouseAddr())
	if err != nil {
		return "", err
	}
	var out, errb bytes.Buffer
	cmd := exec.Command("clickhouse-client", "--host", host, "--port", port, "--database", db, "--format", "TSV", "--query", sql)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("clickhouse-client: %v\n%s", err, errb.Bytes())
	}
	return out.String(), nil
}

// covered records the builders run on both engines.
var covered = map[string]bool{}

// same runs q (built by builder) on every side and fails unless all return
// the same rows, in any order; empty says whether no rows is expected.
func same[T any](t *testing.T, builder string, ss []side, q storage.Query, empty bool) []T {
	t.Helper()
	covered[builder] = true
	var first []T
	for i, s := range ss {
		var rows []T
		if err := s.e.Select(context.Background(), &rows, q); err != nil {
			t.Fatalf("%s on %s: %v\n%s", builder, s.name, err, q.SQL)
		}
		normalize(rows)
		if i == 0 {
			first = rows
			if (len(rows) == 0) != empty {
				t.Errorf("%s: %d rows on %s", builder, len(rows), s.name)
			}
			continue
		}
		if !reflect.DeepEqual(rows, first) {
			t.Errorf("%s differs\n%s: %+v\n%s: %+v", builder, ss[0].name, first, s.name, rows)
		}
	}
	return first
}

// normalize puts rows, and arrays inside them, in one order.
func normalize[T any](rows []T) {
	for i := range rows {
		v := reflect.ValueOf(&rows[i]).Elem()
		for _, f := range reflect.VisibleFields(v.Type()) {
			if x := v.FieldByIndex(f.Index); x.Kind() == reflect.Slice && x.Type().Elem().Kind() == reflect.Uint32 {
				s := x.Interface().([]uint32)
				slices.Sort(s)
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool { return fmt.Sprintf("%+v", rows[i]) < fmt.Sprintf("%+v", rows[j]) })
}

func exec2(t *testing.T, builder string, ss []side, q storage.Query) {
	t.Helper()
	covered[builder] = true
	for _, s := range ss {
		if err := s.e.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s on %s: %v\n%s", builder, s.name, err, q.SQL)
		}
	}
}

// T has a fraction of a second, and the fixtures sit on nanosecond edges.
var T = time.Date(2026, 11, 20, 12, 0, 0, 500_000_000, time.UTC)

const day = 24 * time.Hour

func fixtures() []*contract.Event {
	ev := storagetest.Event
	old := T.Add(-200 * day)
	reg := func(m, s, provider string, at time.Time) *contract.Event {
		d := contract.DeliveryConcession
		if provider == contract.Council {
			d = contract.DeliveryOwn
		}
		return ev(m, contract.Council, at, &contract.ServiceRegistered{Service: s, Name: "Servei " + s, Area: "area-" + s, Delivery: d,
			Provider: provider, ReportingIntervalSeconds: 900, OpenData: s == "aigua"})
	}
	sla := func(m, s, k, dir string, target float64, at time.Time) *contract.Event {
		return ev(m, contract.Council, at, &contract.SLADefined{Service: s, KPI: k, Name: "KPI " + k, Unit: "u", Direction: dir, Target: target, Objective: 0.9})
	}
	meas := func(m, p, s, k string, at time.Time, v float64) *contract.Event {
		return ev(m, p, at, &contract.KPIMeasured{Service: s, KPI: k, Value: v})
	}
	out := []*contract.Event{
		reg("vic", "aigua", "aigues", old), reg("vic", "oac", contract.Council, old), reg("vic", "llum", "citelum", T),
		reg("vic", "vell", contract.Council, old), ev("vic", contract.Council, T.Add(-day), &contract.ServiceRetired{Service: "vell"}),
		reg("vic", "tard", contract.Council, T.Add(time.Nanosecond)),
		sla("vic", "aigua", "pressio", contract.HigherIsBetter, 2, old), sla("vic", "aigua", "pressio", contract.HigherIsBetter, 2.5, T.Add(-day)),
		sla("vic", "oac", "espera", contract.LowerIsBetter, 15, T.Add(-90*day)),
		reg("berga", "x", contract.Council, old),
		ev("vic", "aigues", T.Add(-3*time.Hour-time.Nanosecond), &contract.IncidentOpened{Service: "aigua", Incident: "i1", Priority: "high", ResolutionTargetSeconds: 4 * 3600}),
		ev("vic", "aigues", T.Add(-time.Nanosecond), &contract.IncidentResolved{Service: "aigua", Incident: "i1"}),
		ev("vic", "citelum", T, &contract.IncidentOpened{Service: "llum", Incident: "i2", Priority: "low", ResolutionTargetSeconds: 60}),
		ev("vic", "intrus", T.Add(-time.Hour), &contract.IncidentResolved{Service: "aigua", Incident: "i1"}),
		ev("vic", "aigues", T.Add(-2*time.Hour), &contract.IncidentOpened{Service: "aigua", Incident: "i3", Priority: "critical", ResolutionTargetSeconds: 3600}),
	}
	// Measurements on every edge of C, P and the short windows, meeting
	// the targets or not, from the provider, the council and an intruder.
	for i, at := range []time.Time{T.Add(-60*day - time.Nanosecond), T.Add(-60 * day), T.Add(-30*day - time.Nanosecond), T.Add(-30 * day),
		T.Add(-3 * day), T.Add(-day - time.Nanosecond), T.Add(-6 * time.Hour), T.Add(-time.Hour), T.Add(-time.Nanosecond), T, T.Add(time.Nanosecond)} {
		v := 1.5 + float64(i%3)
		out = append(out, meas("vic", "aigues", "aigua", "pressio", at, v), meas("vic", contract.Council, "oac", "espera", at, 10*v),
			meas("vic", "intrus", "aigua", "pressio", at, -1), meas("inventat", "algu", "x", "y", at, 1))
	}
	out = append(out, meas("vic", "citelum", "llum", "ok", T.Add(-100*day), 1), meas("vic", "citelum", "llum", "ok", T.Add(-61*day), 1))
	return out
}

// TestSameResultsOnBothEngines stores the fixtures on both engines and
// compares every query's answer.
func TestSameResultsOnBothEngines(t *testing.T) {
	ctx := context.Background()
	ss := sides(t)
	evs := fixtures()
	twice := evs[len(evs)-3] // an identity stored twice, as racing replicas would
	for _, s := range ss {
		storagetest.StoreFrom(t, s.e, 1, evs...)
		storagetest.StoreFrom(t, s.e, uint64(len(evs)+1), twice)
	}
	w := 30 * day

	// The ingest service's statements.
	var ids []storage.Identity
	for _, e := range evs[:20] {
		ids = append(ids, storage.Identity{Municipality: e.Municipality, Publisher: e.Publisher, ID: e.ID})
	}
	ids = append(ids, storage.Identity{Municipality: "vic", Publisher: "x", ID: "not-stored"})
	same[storage.Identity](t, "Existing", ss, storage.Existing(ids, []uint32{190001}), true) // a month none is in
	if got := same[storage.Identity](t, "Existing", ss, storage.Existing(ids, nil), false); len(got) != 20 {
		t.Errorf("Existing: %d of 20 found", len(got))
	}
	dupID := storage.Identity{Municipality: twice.Municipality, Publisher: twice.Publisher, ID: twice.ID}
	found := same[storage.StoredTwice](t, "FindStoredTwice", ss, storage.FindStoredTwice(append(ids, dupID), nil), false)
	if len(found) != 1 || found[0].Identity != dupID {
		t.Fatalf("FindStoredTwice: %+v", found)
	}
	for _, s := range ss {
		if err := s.e.Insert(ctx, storage.Duplicates, storage.DuplicateColumns, [][]any{storage.DuplicateRow(dupID, false, T)}); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	if p := same[storage.Count](t, "PendingDuplicates", ss, storage.PendingDuplicates(), false); p[0].N != 1 {
		t.Errorf("pending duplicates: %+v", p)
	}

	// The evaluator's statements, with and without FINAL.
	cat := same[storage.CatalogueRow](t, "CatalogueUpTo", ss, storage.CatalogueUpTo(T, ""), false)
	if n := len(same[storage.CatalogueRow](t, "CatalogueUpTo", ss, storage.CatalogueUpTo(T, "berga"), false)); n != 1 || len(cat) < 9 {
		t.Errorf("catalogue: %d rows, berga %d", len(cat), n)
	}
	if all := same[storage.CatalogueRow](t, "Catalogue", ss, storage.Catalogue(), false); len(all) != len(cat) {
		t.Errorf("whole catalogue: %d rows; want %d (none after the second of T)", len(all), len(cat))
	}
	if f := same[storage.Fingerprint](t, "CatalogueFingerprint", ss, storage.CatalogueFingerprint(), false); f[0].Rows != uint64(len(cat)) {
		t.Errorf("catalogue fingerprint %+v", f)
	}
	same[storage.IncidentRow](t, "IncidentsUpTo", ss, storage.IncidentsUpTo(T, ""), false)
	same[storage.IncidentRow](t, "IncidentsUpTo", ss, storage.IncidentsUpTo(T, "inventat"), true)
	series := []storage.Series{{Municipality: "vic", Service: "aigua", KPI: "pressio", Publisher: "aigues"},
		{Municipality: "vic", Service: "aigua", KPI: "pressio", Publisher: contract.Council},
		{Municipality: "vic", Service: "oac", KPI: "espera", Publisher: contract.Council}}
	services := []storage.Series{{Municipality: "vic", Service: "aigua", Publisher: "aigues"}, {Municipality: "vic", Service: "oac", Publisher: contract.Council},
		{Municipality: "vic", Service: "llum", Publisher: "citelum"}, {Municipality: "vic", Service: "llum", Publisher: contract.Council}}
	compareHashes(t, ss, series, services)

	table := storage.NewTargetTable()
	exec2(t, "CreateTargets", ss, storage.CreateTargets(table))
	exec2(t, "FillTargets", ss, storage.FillTargets(table, storage.TargetRows([]storage.Target{
		{Series: series[0], Target: 2.5}, {Series: series[1], Target: 2.5}, {Series: series[2], LowerIsBetter: true, Target: 15}})))
	if n := same[storage.TableName](t, "LeftoverTargets", ss, storage.LeftoverTargets(), false); len(n) != 1 || n[0].Name != table {
		t.Errorf("leftover targets: %+v", n)
	}
	compareWindowCounts(t, ss, table)
	compareValueKeys(t, ss)
	counted := make([]uint64, len(services))
	for i, x := range services {
		counted[i] = storage.ServiceHash(x)
	}
	compareIncidents(t, ss, counted)
	compareLongOpenIncidents(t, ss)
	same[storage.LastMeasurement](t, "LastBefore", ss, storage.LastBefore(T.Add(-2*w), services), false)
	exec2(t, "DropTable", ss, storage.DropTable(table))
	same[storage.TableName](t, "LeftoverTargets", ss, storage.LeftoverTargets(), true)

	// The ingest's merge of the identity stored twice.
	for _, p := range found[0].Partitions {
		exec2(t, "MergePartition", ss, storage.MergePartition(p))
	}
	same[storage.StoredTwice](t, "FindStoredTwice", ss, storage.FindStoredTwice([]storage.Identity{dupID}, found[0].Partitions), true)

	// The level history.
	for _, s := range ss {
		rows := [][]any{
			storage.MaturityChangeRow("vic", 0, 3, T.Add(-day), []string{"a", "b"}, T),
			storage.MaturityChangeRow("vic", 3, 4, T, nil, T),
			storage.MaturityChangeRow("berga", 0, 1, T, []string{"c"}, T),
		}
		if err := s.e.Insert(ctx, storage.MaturityChanges, storage.MaturityChangeColumns, rows); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	if l := same[storage.LastLevel](t, "LastLevels", ss, storage.LastLevels(), false); len(l) != 2 || l[1].Level != 4 {
		t.Errorf("last levels %+v", l)
	}

	// The Grafana panels that query ClickHouse, as the data source plugin
	// expands their macros.
	for _, p := range panelSQL(t) {
		sql := expandMacros(t, p.sql, T.Add(-2*day), T.Add(time.Minute))
		var first string
		for i, s := range ss {
			out, err := s.tsv(sql)
			if err != nil {
				t.Fatalf("%s on %s: %v", p.where, s.name, err)
			}
			if i == 0 {
				first = out
				if strings.TrimSpace(out) == "" {
					t.Errorf("%s: no rows", p.where)
				}
			} else if out != first {
				t.Errorf("%s differs\n%s:\n%s\n%s:\n%s", p.where, ss[0].name, first, s.name, out)
			}
		}
	}
	compareReportQueries(t, ss)
	compareClusterQueries(t, ss)
	compareKeptWholeDays(t, ss)
	everyBuilderCompared(t)
}

// everyBuilderCompared fails when a query builder of the package was not
// run on both engines.
func everyBuilderCompared(t *testing.T) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !fn.Name.IsExported() || fn.Type.Results == nil || len(fn.Type.Results.List) != 1 {
				continue
			}
			if id, ok := fn.Type.Results.List[0].Type.(*ast.Ident); ok && id.Name == "Query" && !covered[fn.Name.Name] {
				t.Errorf("%s builds a query that is not run on both engines", fn.Name.Name)
			}
		}
	}
}

type panel struct{ where, sql string }

// panelSQL finds the SQL of every ClickHouse target of the dashboards.
func panelSQL(t *testing.T) []panel {
	t.Helper()
	files, err := filepath.Glob("../../deploy/grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("dashboards: %v", err)
	}
	var out []panel
	var walk func(file string, v any)
	walk = func(file string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if sql, ok := x["rawSql"].(string); ok && strings.TrimSpace(sql) != "" {
				out = append(out, panel{where: fmt.Sprintf("%s target %v", filepath.Base(file), x["refId"]), sql: sql})
			}
			for _, y := range x {
				walk(file, y)
			}
		case []any:
			for _, y := range x {
				walk(file, y)
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walk(f, v)
	}
	if len(out) == 0 {
		t.Fatal("no ClickHouse panel found in the dashboards")
	}
	return out
}

var (
	macroRE    = regexp.MustCompile(`\$__(\w+)(?:\(([^)]*)\))?`)
	variableRE = regexp.MustCompile(`\$(\w+)`)
	// Values of the dashboards' variables, from the fixtures.
	variables = map[string]string{"municipality": "vic", "service": "aigua", "provider": "aigues"}
)

// expandMacros expands the macros of the ClickHouse data source and the
// dashboards' variables, and fixes now() at to, so both engines read the
// same clock.
func expandMacros(t *testing.T, sql string, from, to time.Time) string {
	sql = macroRE.ReplaceAllStringFunc(sql, func(m string) string {
		sub := macroRE.FindStringSubmatch(m)
		switch sub[1] {
		case "timeFilter":
			return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", sub[2], from.Unix(), sub[2], to.Unix())
		case "fromTime":
			return fmt.Sprintf("toDateTime(%d)", from.Unix())
		case "toTime":
			return fmt.Sprintf("toDateTime(%d)", to.Unix())
		case "interval_s":
			return "3600"
		}
		t.Errorf("macro %s has no expansion here", m)
		return m
	})
	sql = variableRE.ReplaceAllStringFunc(sql, func(m string) string {
		v, ok := variables[m[1:]]
		if !ok {
			t.Errorf("dashboard variable %s has no value here", m)
		}
		return v
	})
	return strings.ReplaceAll(sql, "now()", fmt.Sprintf("toDateTime(%d)", to.Unix()))
}
