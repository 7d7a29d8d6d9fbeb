package storage

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

// EventNS is a row's event instant in nanoseconds since the epoch, exact:
// time holds whole seconds and time_ns the nanoseconds within the second.
// ClickHouse 18.16 has no DateTime64, and an Int64 of nanoseconds holds
// every instant up to the year 2262.
const EventNS = "(toInt64(toUInt32(time)) * 1000000000 + time_ns)"

// second is the whole second of an instant, for the coarse filters on the
// time column (which use its index); the exact comparisons use EventNS.
func second(t time.Time) int64 { return t.Unix() }

// CatalogueRow is one catalogue event.
type CatalogueRow struct {
	Municipality string  `ch:"municipality"`
	Type         string  `ch:"type"`
	Service      string  `ch:"service"`
	KPI          string  `ch:"kpi"`
	Time         int64   `ch:"t"` // event instant, nanoseconds since the epoch
	Seq          uint64  `ch:"stream_seq"`
	Name         string  `ch:"name"`
	Area         string  `ch:"area"`
	Delivery     string  `ch:"delivery"`
	Provider     string  `ch:"provider"`
	Interval     uint32  `ch:"reporting_interval_seconds"`
	OpenData     uint8   `ch:"open_data"`
	Unit         string  `ch:"unit"`
	Direction    string  `ch:"direction"`
	Target       float64 `ch:"target"`
	Objective    float64 `ch:"objective"`
}

// CatalogueUpTo selects the council's catalogue events (CatalogueRow) with
// a time in the second of at or before, of one municipality or of all
// (municipality empty), deduplicated. The caller keeps those at or before
// at to the nanosecond.
func CatalogueUpTo(at time.Time, municipality string) Query {
	return Query{
		SQL: `SELECT municipality, type, service, kpi, ` + EventNS + ` AS t, stream_seq, name, area, delivery, provider,
		reporting_interval_seconds, open_data, unit, direction, target, objective
		FROM ` + Catalog + ` FINAL WHERE publisher = ? AND time <= toDateTime(?) AND (? = '' OR municipality = ?)`,
		Args: []any{contract.Council, second(at), municipality, municipality},
	}
}

// IncidentRow is one incident event.
type IncidentRow struct {
	Municipality string `ch:"municipality"`
	Publisher    string `ch:"publisher"`
	Type         string `ch:"type"`
	Service      string `ch:"service"`
	Incident     string `ch:"incident"`
	Priority     string `ch:"priority"`
	Target       uint32 `ch:"resolution_target_seconds"`
	Time         int64  `ch:"t"` // nanoseconds since the epoch
}

// IncidentsUpTo selects incident events (IncidentRow) with a time in the
// second of at or before, deduplicated; the caller keeps those before at.
func IncidentsUpTo(at time.Time, municipality string) Query {
	return Query{
		SQL: `SELECT municipality, publisher, type, service, incident, priority, resolution_target_seconds, ` + EventNS + ` AS t
		FROM ` + Incidents + ` FINAL WHERE time <= toDateTime(?) AND (? = '' OR municipality = ?)`,
		Args: []any{second(at), municipality, municipality},
	}
}

// Count is the answer of a query that counts.
type Count struct {
	N uint64 `ch:"n"`
}

// PendingDuplicates counts identities stored twice and not merged yet
// (Count); while there are any, measurements are read with FINAL.
func PendingDuplicates() Query {
	return Query{SQL: "SELECT countIf(resolved = 0) AS n FROM " + Duplicates + " FINAL"}
}

// Kinds of HashName.
const (
	HashOfSeries       uint8 = 1 // cityHash64(municipality, service, kpi, publisher): column series
	HashOfService      uint8 = 2 // cityHash64(municipality, service, publisher): column sseries
	HashOfMunicipality uint8 = 3 // cityHash64(municipality): column mseries
)

// Series names a series of measurements (KPI empty for a service's).
type Series struct{ Municipality, Service, KPI, Publisher string }

// HashName is the hash the server computes for a name, as in the
// materialized columns of measurements.
type HashName struct {
	Kind         uint8  `ch:"kind"`
	Hash         uint64 `ch:"hash"`
	Municipality string `ch:"municipality"`
	Service      string `ch:"service"`
	KPI          string `ch:"kpi"`
	Publisher    string `ch:"publisher"`
}

// HashNames asks the server for the hashes (HashName) of KPI series, of
// services' series (Series with KPI empty) and of municipalities, so
// aggregates grouped by hash can be named.
func HashNames(series, services []Series, municipalities []string) Query {
	sl := &External{Name: "sla_names", Columns: []Column{{"m", "String"}, {"s", "String"}, {"k", "String"}, {"p", "String"}}}
	for _, x := range series {
		sl.Append(x.Municipality, x.Service, x.KPI, x.Publisher)
	}
	sv := &External{Name: "svc_names", Columns: []Column{{"m", "String"}, {"s", "String"}, {"p", "String"}}}
	for _, x := range services {
		sv.Append(x.Municipality, x.Service, x.Publisher)
	}
	mu := &External{Name: "muni_names", Columns: []Column{{"m", "String"}}}
	for _, m := range municipalities {
		mu.Append(m)
	}
	return Query{
		SQL: fmt.Sprintf(`SELECT toUInt8(%d) AS kind, cityHash64(m, s, k, p) AS hash, m AS municipality, s AS service, k AS kpi, p AS publisher FROM sla_names
		UNION ALL SELECT toUInt8(%d), cityHash64(m, s, p), m, s, '', p FROM svc_names
		UNION ALL SELECT toUInt8(%d), cityHash64(m), m, '', '', '' FROM muni_names`, HashOfSeries, HashOfService, HashOfMunicipality),
		External: []*External{sl, sv, mu},
	}
}

// TargetTablePrefix starts the name of every SLA target table.
const TargetTablePrefix = "sla_targets_"

// NewTargetTable returns a fresh name for an SLA target table.
func NewTargetTable() string {
	return fmt.Sprintf("%s%d_%d", TargetTablePrefix, time.Now().UnixNano(), rand.Uint32())
}

// CreateTargets creates an SLA target table: a Join table keyed by series
// holding sign and bound such that a value meets the target when
// value*sign >= bound. Drop it with DropTable.
func CreateTargets(table string) Query {
	return Query{SQL: "CREATE TABLE " + table + " (series UInt64, sign Float64, bound Float64) ENGINE = Join(ANY, LEFT, series)"}
}

// Target is the target of an SLA for one publisher's series.
type Target struct {
	Series
	LowerIsBetter bool
	Target        float64
}

// FillTargets loads targets into an SLA target table.
func FillTargets(table string, targets []Target) Query {
	t := &External{Name: "slas", Columns: []Column{{"municipality", "String"}, {"service", "String"}, {"kpi", "String"},
		{"publisher", "String"}, {"lower", "UInt8"}, {"target", "Float64"}}}
	for _, x := range targets {
		lower := uint8(0)
		if x.LowerIsBetter {
			lower = 1
		}
		t.Append(x.Municipality, x.Service, x.KPI, x.Publisher, lower, x.Target)
	}
	return Query{
		SQL:      "INSERT INTO " + table + " SELECT cityHash64(municipality, service, kpi, publisher), if(lower = 1, -1, 1), if(lower = 1, -target, target) FROM slas",
		External: []*External{t},
	}
}

// DropTable drops a table if it exists.
func DropTable(table string) Query { return Query{SQL: "DROP TABLE IF EXISTS " + table} }

// TableName is a table's name.
type TableName struct {
	Name string `ch:"name"`
}

// LeftoverTargets lists the SLA target tables of the database (TableName):
// at start, any is a leftover of a stopped evaluator.
func LeftoverTargets() Query {
	return Query{SQL: "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, ?)", Args: []any{TargetTablePrefix}}
}

// measured is the inner query of the window aggregates: every measurement
// with its instant (t, nanoseconds) and whether it meets the target of its
// series' SLA (ok), from the second of from to the second of to.
func measured(targets string, from, to time.Time, municipality string, final bool) (string, []any) {
	f := ""
	if final {
		f = " FINAL"
	}
	args := []any{second(from), second(to)}
	filter := ""
	if municipality != "" {
		filter, args = " AND municipality = ?", append(args, municipality)
	}
	return fmt.Sprintf(`SELECT series, sseries, mseries, %s AS t,
			value * joinGet('%s', 'sign', series) >= joinGet('%s', 'bound', series) AS ok
		FROM %s%s
		WHERE time >= toDateTime(?) AND time <= toDateTime(?)%s`, EventNS, targets, targets, Measurements, f, filter), args
}

// SeriesCounts are the measurements of one series (one KPI of one service
// from one publisher) in the current and previous windows.
type SeriesCounts struct {
	Series           uint64 `ch:"series"`
	ServiceHash      uint64 `ch:"service_hash"`      // sseries
	MunicipalityHash uint64 `ch:"municipality_hash"` // mseries
	SamplesC         uint64 `ch:"samples_c"`
	MeetingC         uint64 `ch:"meeting_c"` // of SamplesC, meeting the SLA target (meaningless without an SLA)
	SamplesP         uint64 `ch:"samples_p"`
	MeetingP         uint64 `ch:"meeting_p"`
	Last             int64  `ch:"last_ns"` // latest instant, nanoseconds since the epoch
}

// CountSeries counts, per series (SeriesCounts), the measurements in the
// current window C = [at-w, at) and the previous one P = [at-2w, at-w),
// exact to the nanosecond, and how many meet the target in the SLA target
// table. final reads measurements with FINAL (identities stored twice
// pending).
func CountSeries(targets string, at time.Time, w time.Duration, municipality string, final bool) Query {
	from, cStart := at.Add(-2*w), at.Add(-w)
	inner, args := measured(targets, from, at, municipality, final)
	c := cStart.UnixNano()
	return Query{
		SQL: `SELECT series, any(sseries) AS service_hash, any(mseries) AS municipality_hash,
			countIf(t >= ?) AS samples_c, toUInt64(sumIf(ok, t >= ?)) AS meeting_c,
			countIf(t < ?) AS samples_p, toUInt64(sumIf(ok, t < ?)) AS meeting_p,
			max(t) AS last_ns
		FROM (` + inner + `)
		WHERE t >= ? AND t < ?
		GROUP BY series`,
		Args: append(append([]any{c, c, c, c}, args...), from.UnixNano(), at.UnixNano()),
	}
}

// Window is a recent window of business time, [at-D, at).
type Window struct {
	Label string
	D     time.Duration
}

// ShortCounts are the measurements of one series in each short window:
// Samples[i] and Meeting[i] are those of the i-th window asked for.
type ShortCounts struct {
	Series  uint64   `ch:"series"`
	Samples []uint64 `ch:"samples"`
	Meeting []uint64 `ch:"meeting"` // of Samples, meeting the SLA target (meaningless without an SLA)
}

// CountShortWindows counts, per series with a measurement in the longest
// window (ShortCounts), the measurements in each window [at-D, at) and how
// many meet the target in the SLA target table, in one pass over the last
// days.
func CountShortWindows(targets string, at time.Time, windows []Window, municipality string, final bool) Query {
	oldest := at
	samples, meeting := make([]string, len(windows)), make([]string, len(windows))
	var sargs, margs []any
	for i, w := range windows {
		s := at.Add(-w.D)
		if s.Before(oldest) {
			oldest = s
		}
		samples[i], meeting[i] = "countIf(t >= ?)", "toUInt64(sumIf(ok, t >= ?))"
		sargs, margs = append(sargs, s.UnixNano()), append(margs, s.UnixNano())
	}
	inner, args := measured(targets, oldest, at, municipality, final)
	return Query{
		SQL: `SELECT series, [` + strings.Join(samples, ", ") + `] AS samples, [` + strings.Join(meeting, ", ") + `] AS meeting
		FROM (` + inner + `)
		WHERE t >= ? AND t < ?
		GROUP BY series`,
		Args: append(append(append(sargs, margs...), args...), oldest.UnixNano(), at.UnixNano()),
	}
}

// LastMeasurement is the latest measurement of a service.
type LastMeasurement struct {
	Municipality string `ch:"municipality"`
	Service      string `ch:"service"`
	Last         int64  `ch:"last_ns"` // nanoseconds since the epoch
}

// LastBefore finds, for each service's series (Series with KPI empty), its
// latest measurement before the instant before (LastMeasurement), however
// old; services with a measurement at or after it have no row.
func LastBefore(before time.Time, services []Series) Query {
	t := &External{Name: "missing", Columns: []Column{{"municipality", "String"}, {"service", "String"}, {"publisher", "String"}}}
	for _, s := range services {
		t.Append(s.Municipality, s.Service, s.Publisher)
	}
	return Query{
		SQL: `SELECT municipality, service, max(` + EventNS + `) AS last_ns FROM ` + Measurements + `
		WHERE time <= toDateTime(?) AND (municipality, service, publisher) IN (SELECT municipality, service, publisher FROM missing)
		GROUP BY municipality, service HAVING last_ns < ?`,
		Args:     []any{second(before), before.UnixNano()},
		External: []*External{t},
	}
}
