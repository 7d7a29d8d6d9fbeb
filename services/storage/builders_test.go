package storage_test

import (
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/internal/chdbengine"
)

// placeholders counts the ? of sql outside string literals.
func placeholders(sql string) int {
	n, quoted := 0, false
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case quoted && c == '\\':
			i++
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
		}
	}
	return n
}

// TestBuilders checks every builder's shape without a server: one argument
// per placeholder, external rows as wide as their columns, no value of an
// event in the SQL text, and the windows as nanoseconds.
func TestBuilders(t *testing.T) {
	at := time.Date(2026, 11, 20, 12, 0, 0, 500_000_000, time.UTC)
	hostile := "vic'; DROP TABLE measurements; --"
	ids := []storage.Identity{{Municipality: hostile, Publisher: "p", ID: "1"}}
	series := []storage.Series{{Municipality: hostile, Service: "s", KPI: "k", Publisher: "p"}}
	windows := []storage.Window{{Label: "1h", D: time.Hour}, {Label: "1d", D: 24 * time.Hour}}
	span := storage.Span{Targets: "sla_targets_1_2", At: at, W: 30 * 24 * time.Hour, Windows: windows, Municipality: hostile}
	span.From, span.To = storage.Oldest(at, span.W, windows), at
	midnight := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for name, q := range map[string]storage.Query{
		"Existing":                 storage.Existing(ids, []uint32{202601, 202602}),
		"FindStoredTwice":          storage.FindStoredTwice(ids, []uint32{202601}),
		"MergePartition":           storage.MergePartition(202611),
		"CatalogueUpTo":            storage.CatalogueUpTo(at, hostile),
		"IncidentsUpTo":            storage.IncidentsUpTo(at, hostile),
		"PendingDuplicates":        storage.PendingDuplicates(),
		"CreateTargets":            storage.CreateTargets("sla_targets_1_2"),
		"FillTargets":              storage.FillTargets("sla_targets_1_2", storage.TargetRows([]storage.Target{{Series: series[0], Target: 1}})),
		"DropTable":                storage.DropTable("sla_targets_1_2"),
		"LeftoverTargets":          storage.LeftoverTargets(),
		"CountSeries":              storage.CountSeries(span, true, []storage.StoredSeries{{Series: 1, Municipality: hostile, Publisher: "p"}}),
		"CountRollups":             storage.CountRollups(span, []uint64{1, 2}),
		"CountRollups, whole days": storage.CountRollups(storage.Span{Targets: "t", At: midnight, W: 30 * 24 * time.Hour, From: midnight.Add(-60 * 24 * time.Hour), To: midnight}, nil),
		"MeasurementCoverage":      storage.MeasurementCoverage(),
		"SeriesStoredTwice":        storage.SeriesStoredTwice(),
		"Catalogue":                storage.Catalogue(),
		"CatalogueFingerprint":     storage.CatalogueFingerprint(),
		"IncidentIDs":              storage.IncidentIDs([]storage.IncidentState{{Key: 1, Opened: at.UnixNano()}}),
		"IncidentsAt":              storage.IncidentsAt(at, 30*24*time.Hour, []uint64{1}, hostile),
		"LastBefore":               storage.LastBefore(at, series),
		"LastLevels":               storage.LastLevels(),
		"CountSeries, all places":  storage.CountSeries(storage.Span{Targets: "t", At: at, W: 30 * 24 * time.Hour, From: at.Add(-60 * 24 * time.Hour), To: at}, false, nil),
		"CountDays": storage.CountDays(hostile, []storage.Target{{Series: series[0], Target: 1}},
			[]time.Time{at.Add(-48 * time.Hour), at.Add(-24 * time.Hour)}, at, true),
	} {
		if n := placeholders(q.SQL); n != len(q.Args) {
			t.Errorf("%s: %d placeholders, %d arguments\n%s", name, n, len(q.Args), q.SQL)
		}
		if strings.Contains(q.SQL, "DROP TABLE measurements") {
			t.Errorf("%s: a value of an event is in the SQL text", name)
		}
		for _, x := range q.External {
			for _, r := range x.Rows {
				if len(r) != len(x.Columns) {
					t.Errorf("%s: external %s row of %d values for %d columns", name, x.Name, len(r), len(x.Columns))
				}
			}
		}
		if _, err := chdbengine.Bind(q.SQL, q.Args); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	q := storage.CountSeries(storage.Span{Targets: "t", At: at, W: 30 * 24 * time.Hour, From: at.Add(-60 * 24 * time.Hour), To: at}, false, nil)
	if q.Args[0] != at.Add(-30*24*time.Hour).UnixNano() || q.Args[len(q.Args)-1] != at.UnixNano() {
		t.Errorf("C starts at %v and ends at %v; want T-W and T in nanoseconds", q.Args[0], q.Args[len(q.Args)-1])
	}
}

// TestEventRows: every kind of event fills one value of each column of its
// table and none of the others, and its time is split into seconds,
// milliseconds and nanoseconds.
func TestEventRows(t *testing.T) {
	at := time.Date(2026, 11, 20, 12, 0, 0, 123_456_789, time.FixedZone("CET", 3600))
	for _, d := range []any{
		&contract.KPIMeasured{Service: "s", KPI: "k", Value: 1},
		&contract.ServiceRegistered{Service: "s", Area: "a", Delivery: contract.DeliveryOwn, Provider: contract.Council, OpenData: true},
		&contract.ServiceRetired{Service: "s"},
		&contract.SLADefined{Service: "s", KPI: "k", Direction: contract.HigherIsBetter, Target: 1, Objective: 0.9},
		&contract.IncidentOpened{Service: "s", Incident: "i", Priority: "high", ResolutionTargetSeconds: 60},
		&contract.IncidentResolved{Service: "s", Incident: "i"},
	} {
		e := &contract.Event{ID: "x", Time: at, Municipality: "vic", Publisher: "p", Data: d}
		var columns storage.EventColumns
		if err := columns.Add(e, 7, at); err != nil {
			t.Fatal(err)
		}
		var table string
		for _, x := range storage.EventTables {
			if n := storage.RowCount(columns.Values(x)); n == 1 && table == "" {
				table = x
			} else if n != 0 {
				t.Fatalf("%T: %d rows in %s", d, n, x)
			}
		}
		values, cols := columns.Values(table), storage.ColumnsOf(table)
		if len(values) != len(cols) {
			t.Fatalf("%T: %d values for %d columns of %s", d, len(values), len(cols), table)
		}
		row := map[string]any{}
		for i, c := range cols {
			if n := storage.RowCount(values[i : i+1]); n != 1 {
				t.Fatalf("%T: column %s of %s has %d values", d, c, table, n)
			}
		}
		for i, v := range storage.Rows(values)[0] {
			row[cols[i]] = v
		}
		if row["time"] != at.UTC().Truncate(time.Second) || row["time_ms"] != uint16(123) || row["time_ns"] != uint32(123_456_789) ||
			row["stream_seq"] != uint64(7) || row["version"] != storage.Version(7) {
			t.Errorf("%T: %v", d, row)
		}
	}
	var columns storage.EventColumns
	if err := columns.Add(&contract.Event{ID: "x", Data: &contract.MaturityChanged{}}, 1, at); err == nil {
		t.Error("a level-change event has a row")
	}
	if storage.Version(1) <= storage.Version(2) {
		t.Error("the first copy in the stream must have the highest version")
	}
}

func TestLiterals(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want string
	}{
		{`it's a \ test`, `'it\'s a \\ test'`}, {int64(-5), "-5"}, {uint64(18446744073709551615), "18446744073709551615"},
		{1.5, "1.5"}, {1e-7, "1e-07"}, {true, "1"}, {time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), "'2026-01-02 03:04:05'"},
	} {
		if got, err := chdbengine.Literal(tt.v); err != nil || got != tt.want {
			t.Errorf("%v: %q %v, want %q", tt.v, got, err, tt.want)
		}
	}
	if got, err := chdbengine.Bind("SELECT '?', ?, ?", []any{"a", 2}); err != nil || got != "SELECT '?', 'a', 2" {
		t.Errorf("bind: %q %v", got, err)
	}
	if _, err := chdbengine.Bind("SELECT ?", nil); err == nil {
		t.Error("a placeholder without an argument is bound")
	}
}
