package storage

import (
	"cmp"
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

// Catalogue selects every catalogue event of the councils (CatalogueRow),
// whatever its time, deduplicated: the reader keeps them while
// CatalogueFingerprint stays the same and applies T itself.
func Catalogue() Query {
	return Query{
		SQL: `SELECT municipality, type, service, kpi, ` + EventNS + ` AS t, stream_seq, name, area, delivery, provider,
		reporting_interval_seconds, open_data, unit, direction, target, objective
		FROM ` + Catalog + ` FINAL WHERE publisher = ?`,
		Args: []any{contract.Council},
	}
}

// Fingerprint sums up the rows stored in a table.
type Fingerprint struct {
	Rows uint64 `ch:"n"`
	Hash uint64 `ch:"h"` // sum of the hashes of every row's identity and stream sequence
}

// CatalogueFingerprint reads the Fingerprint of the catalogue table, without
// FINAL: rows are only ever added (an event) or merged away (a copy of
// one), and either changes it, so an equal fingerprint means the same
// rows, and the same answer to Catalogue.
func CatalogueFingerprint() Query {
	return Query{SQL: "SELECT count() AS n, sum(cityHash64(municipality, publisher, id, stream_seq, version)) AS h FROM " + Catalog}
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

// Series names a series of measurements (KPI empty for a service's).
type Series struct{ Municipality, Service, KPI, Publisher string }

// TargetTablePrefix starts the name of every SLA target table.
const TargetTablePrefix = "sla_targets_"

// NewTargetTable returns a fresh name for an SLA target table.
func NewTargetTable() string {
	return fmt.Sprintf("%s%d_%d", TargetTablePrefix, time.Now().UnixNano(), rand.Uint32())
}

// CreateTargets creates an SLA target table: a Join table keyed by series
// holding, for the event tables, sign and bound such that a value meets
// the target when value*sign >= bound, and, for the rollups, from_key and
// lower such that a value meets it when its ValueKey is >= from_key
// (higher is better, lower 0) or < from_key (lower is better, lower 1).
// Drop it with DropTable.
func CreateTargets(table string) Query {
	return Query{SQL: "CREATE TABLE " + table +
		" (series UInt64, sign Float64, bound Float64, from_key UInt64, lower UInt8) ENGINE = Join(ANY, LEFT, series)"}
}

// Target is the target of an SLA for one publisher's series.
type Target struct {
	Series
	LowerIsBetter bool
	Target        float64
}

// TargetRows are the rows of an SLA target table for targets, keyed by the
// hash of each series (SeriesHash), so no name travels; FillTargets loads
// them. They depend on the catalogue alone, so a reader can keep them.
func TargetRows(targets []Target) *External {
	t := &External{Name: "slas", Columns: []Column{{"series", "UInt64"}, {"sign", "Float64"}, {"bound", "Float64"},
		{"from_key", "UInt64"}, {"lower", "UInt8"}}, Rows: make([][]any, 0, len(targets))}
	for _, x := range targets {
		if x.LowerIsBetter { // v <= t: -v >= -t, and not ValueKey(v) >= ValueKey(t)+1
			t.Append(SeriesHash(x.Series), -1.0, -x.Target, ValueKey(x.Target)+1, uint8(1))
		} else {
			t.Append(SeriesHash(x.Series), 1.0, x.Target, ValueKey(x.Target), uint8(0))
		}
	}
	return t
}

// FillTargets loads the rows of TargetRows into an SLA target table.
func FillTargets(table string, rows *External) Query {
	return Query{SQL: "INSERT INTO " + table + " SELECT series, sign, bound, from_key, lower FROM " + rows.Name, External: []*External{rows}}
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

// Window is a recent window of business time, [at-D, at).
type Window struct {
	Label string
	D     time.Duration
}

// Span is what one read of measurements counts for an evaluation at At
// with windows of length W: the previous window P = [At-2W, At-W), the
// current one C = [At-W, At) and each short window [At-D, At), all cut to
// [From, To). An evaluation reads its windows in parts (the days before
// the rollups' coverage from measurements, the rest from the rollups)
// and adds the parts up, so every count of a part is exact on its own.
type Span struct {
	Targets      string        // SLA target table (CreateTargets)
	At           time.Time     // T
	W            time.Duration // window length
	Windows      []Window      // short windows
	From, To     time.Time     // the part read
	Municipality string        // one municipality, or every one when empty
}

// Oldest is the earliest instant the windows of an evaluation at at reach:
// T-2W, or the start of a longer short window.
func Oldest(at time.Time, w time.Duration, windows []Window) time.Time {
	oldest := at.Add(-2 * w)
	for _, x := range windows {
		if s := at.Add(-x.D); s.Before(oldest) {
			oldest = s
		}
	}
	return oldest
}

// interval is [lo, hi), nanoseconds since the epoch; empty when lo >= hi.
type interval struct{ lo, hi int64 }

func (i interval) empty() bool { return i.lo >= i.hi }

// intervals are P, C and the short windows, in this order, cut to the span.
func (s Span) intervals() []interval {
	from, to := s.From.UnixNano(), s.To.UnixNano()
	cut := func(lo, hi time.Time) interval {
		return interval{max(lo.UnixNano(), from), min(hi.UnixNano(), to)}
	}
	out := []interval{cut(s.At.Add(-2*s.W), s.At.Add(-s.W)), cut(s.At.Add(-s.W), s.At)}
	for _, x := range s.Windows {
		out = append(out, cut(s.At.Add(-x.D), s.At))
	}
	return out
}

// SeriesCounts are the measurements of one series (one KPI of one service
// from one publisher) in a span: in the current and previous windows, and
// in each short window.
type SeriesCounts struct {
	Series           uint64 `ch:"series"`
	ServiceHash      uint64 `ch:"service_hash"`      // sseries
	MunicipalityHash uint64 `ch:"municipality_hash"` // mseries
	SamplesC         uint64 `ch:"samples_c"`
	MeetingC         uint64 `ch:"meeting_c"` // of SamplesC, meeting the SLA target (meaningless without an SLA)
	SamplesP         uint64 `ch:"samples_p"`
	MeetingP         uint64 `ch:"meeting_p"`
	Last             int64  `ch:"last_ns"` // latest instant in the span, nanoseconds since the epoch
	ShortCounts
}

// MaxShortWindows is the most short windows a Span may have: each is two
// columns of SeriesCounts (arrays would cost the driver a slice per row,
// a tenth of an evaluation at Catalonia size).
const MaxShortWindows = 4

// ShortCounts are the samples, and of them those meeting the SLA target,
// of each short window, in the order of Span.Windows (0 past them).
type ShortCounts struct {
	ShortSamples0 uint64 `ch:"short_samples_0"`
	ShortSamples1 uint64 `ch:"short_samples_1"`
	ShortSamples2 uint64 `ch:"short_samples_2"`
	ShortSamples3 uint64 `ch:"short_samples_3"`
	ShortMeeting0 uint64 `ch:"short_meeting_0"`
	ShortMeeting1 uint64 `ch:"short_meeting_1"`
	ShortMeeting2 uint64 `ch:"short_meeting_2"`
	ShortMeeting3 uint64 `ch:"short_meeting_3"`
}

// Short returns the counts of short window i (0 for i out of range).
func (c *ShortCounts) Short(i int) (samples, meeting uint64) {
	switch i {
	case 0:
		return c.ShortSamples0, c.ShortMeeting0
	case 1:
		return c.ShortSamples1, c.ShortMeeting1
	case 2:
		return c.ShortSamples2, c.ShortMeeting2
	case 3:
		return c.ShortSamples3, c.ShortMeeting3
	}
	return 0, 0
}

// Add adds the counts of o.
func (c *ShortCounts) Add(o ShortCounts) {
	c.ShortSamples0 += o.ShortSamples0
	c.ShortSamples1 += o.ShortSamples1
	c.ShortSamples2 += o.ShortSamples2
	c.ShortSamples3 += o.ShortSamples3
	c.ShortMeeting0 += o.ShortMeeting0
	c.ShortMeeting1 += o.ShortMeeting1
	c.ShortMeeting2 += o.ShortMeeting2
	c.ShortMeeting3 += o.ShortMeeting3
}

// Shift applies to c the changes d of its whole days' counts (Series,
// hashes and Last aside); false, and c unchanged, when a count would go
// below zero (c and d were not counted on the same samples).
func (c *SeriesCounts) Shift(d *ShiftedCounts) bool {
	s := &c.ShortCounts
	to := [12]*uint64{&c.SamplesC, &c.MeetingC, &c.SamplesP, &c.MeetingP,
		&s.ShortSamples0, &s.ShortSamples1, &s.ShortSamples2, &s.ShortSamples3,
		&s.ShortMeeting0, &s.ShortMeeting1, &s.ShortMeeting2, &s.ShortMeeting3}
	by := [12]int64{d.SamplesC, d.MeetingC, d.SamplesP, d.MeetingP,
		d.ShortSamples0, d.ShortSamples1, d.ShortSamples2, d.ShortSamples3,
		d.ShortMeeting0, d.ShortMeeting1, d.ShortMeeting2, d.ShortMeeting3}
	var out [12]uint64
	for i := range out {
		if by[i] < 0 && uint64(-by[i]) > *to[i] {
			return false
		}
		out[i] = *to[i] + uint64(by[i])
	}
	for i := range out {
		*to[i] = out[i]
	}
	return true
}

// countNames name the columns of counts: samples and meeting in C, in P,
// and the prefixes of those of the short windows, one column per window
// (the prefix and the window's index, MaxShortWindows of them).
type countNames struct {
	c, p  [2]string
	short [2]string
	zero  string // what counts nothing; toUInt64(0) when empty
}

// seriesColumns are the columns of SeriesCounts.
var seriesColumns = countNames{c: [2]string{"samples_c", "meeting_c"}, p: [2]string{"samples_p", "meeting_p"},
	short: [2]string{"short_samples_", "short_meeting_"}}

// counts writes the counts of SeriesCounts over the intervals of a span,
// named by names, with one expression builder per kind: samples(i) and
// meeting(i) count in interval i; an empty interval, and a short window
// past the span's, counts 0 without a look at the rows.
func counts(iv []interval, names countNames, samples, meeting func(interval) (string, []any)) (string, []any) {
	if len(iv)-2 > MaxShortWindows {
		panic(fmt.Sprintf("storage: %d short windows; at most %d", len(iv)-2, MaxShortWindows))
	}
	zero := cmp.Or(names.zero, "toUInt64(0)")
	var args []any
	expr := func(f func(interval) (string, []any), i interval) string {
		if i.empty() {
			return zero
		}
		e, a := f(i)
		args = append(args, a...)
		return e
	}
	cols := []string{
		expr(samples, iv[1]) + " AS " + names.c[0], expr(meeting, iv[1]) + " AS " + names.c[1],
		expr(samples, iv[0]) + " AS " + names.p[0], expr(meeting, iv[0]) + " AS " + names.p[1],
	}
	for k, f := range []func(interval) (string, []any){samples, meeting} {
		for j := range MaxShortWindows {
			e := zero
			if j+2 < len(iv) {
				e = expr(f, iv[j+2])
			}
			cols = append(cols, fmt.Sprintf("%s AS %s%d", e, names.short[k], j))
		}
	}
	return strings.Join(cols, ", "), args
}

// StoredSeries is the series of a stored measurement, with the leading
// columns of the table's key (to read its rows through the index).
type StoredSeries struct {
	Series       uint64 `ch:"series"`
	Municipality string `ch:"municipality"`
	Publisher    string `ch:"publisher"`
}

// CountSeries counts, per series (SeriesCounts), the measurements of the
// span in the measurements table, exact to the nanosecond, and how many
// meet the target in the SLA target table. final reads with FINAL
// (identities stored twice pending); only, when not empty, restricts the
// read to those series.
func CountSeries(s Span, final bool, only []StoredSeries) Query {
	iv := s.intervals()
	sel, args := counts(iv, seriesColumns,
		func(i interval) (string, []any) { return "countIf(t >= ? AND t < ?)", []any{i.lo, i.hi} },
		func(i interval) (string, []any) { return "toUInt64(sumIf(ok, t >= ? AND t < ?))", []any{i.lo, i.hi} })
	f := ""
	if final {
		f = " FINAL"
	}
	filter := ""
	args = append(args, second(s.From), second(s.To))
	if s.Municipality != "" {
		filter, args = " AND municipality = ?", append(args, s.Municipality)
	}
	var ext []*External
	if len(only) > 0 {
		t := &External{Name: "only_series", Columns: []Column{{"series", "UInt64"}, {"municipality", "String"}, {"publisher", "String"}}}
		for _, x := range only {
			t.Append(x.Series, x.Municipality, x.Publisher)
		}
		ext = []*External{t}
		filter += " AND (municipality, publisher) IN (SELECT municipality, publisher FROM only_series) AND series IN (SELECT series FROM only_series)"
	}
	return Query{
		SQL: fmt.Sprintf(`SELECT series, any(sseries) AS service_hash, any(mseries) AS municipality_hash, %s, max(t) AS last_ns
		FROM (
			SELECT series, sseries, mseries, %s AS t,
				value * joinGet('%s', 'sign', series) >= joinGet('%s', 'bound', series) AS ok
			FROM %s%s
			WHERE time >= toDateTime(?) AND time <= toDateTime(?)%s
		)
		WHERE t >= ? AND t < ?
		GROUP BY series`, sel, EventNS, s.Targets, s.Targets, Measurements, f, filter),
		Args:     append(args, s.From.UnixNano(), s.To.UnixNano()),
		External: ext,
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
