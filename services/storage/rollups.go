package storage

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The evaluator's rollups (migrations/004_evaluation_rollups.sql), filled
// by materialized views from each block inserted into the event tables.
const (
	// MeasurementDays holds measurements per series and day.
	MeasurementDays = "measurement_days"
	// IncidentKeys holds the earliest opening and resolution per incident
	// and publisher.
	IncidentKeys = "incident_keys"
	// IncidentTimes holds the deadline of every opening and the instant of
	// every resolution, ordered by time.
	IncidentTimes = "incident_times"
	// IncidentOpen holds per incident and publisher its openings minus its
	// resolutions; merges drop the rows that come to 0.
	IncidentOpen = "incident_open"
	// IncidentNames holds the ids of incidents by month of opening.
	IncidentNames = "incident_names"
	// RollupCoverage records from which day measurement_days is complete.
	RollupCoverage = "rollup_coverage"
)

// Coverage says from which day (UTC) MeasurementDays holds every
// measurement; with no row (Rows 0) it holds none for sure.
type Coverage struct {
	Rows    uint64 `ch:"n"`
	FromDay uint32 `ch:"from_day"` // days since 1970-01-01
}

// From is the first instant covered; ok is false when nothing is.
func (c Coverage) From() (from time.Time, ok bool) {
	if c.Rows == 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(c.FromDay)*86400, 0).UTC(), true
}

// MeasurementCoverage reads the coverage of MeasurementDays (Coverage).
func MeasurementCoverage() Query {
	return Query{
		SQL:  "SELECT count() AS n, toUInt32(min(from_day)) AS from_day FROM " + RollupCoverage + " WHERE rollup = ?",
		Args: []any{MeasurementDays},
	}
}

// SeriesStoredTwice selects the series (StoredSeries) of every identity
// the duplicates table names, resolved or not: the rollups added each
// copy, so the evaluator reads these series from measurements instead.
func SeriesStoredTwice() Query {
	return Query{SQL: "SELECT DISTINCT series, municipality, publisher FROM " + Measurements +
		" WHERE (municipality, publisher, id) IN (SELECT municipality, publisher, id FROM " + Duplicates + ")"}
}

const day = 24 * time.Hour

func floorDay(t time.Time) time.Time { return t.UTC().Truncate(day) }

func ceilDay(t time.Time) time.Time {
	if d := floorDay(t); !d.Equal(t) {
		return d.Add(day)
	}
	return t.UTC()
}

func date(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// CountRollups counts what CountSeries counts, from MeasurementDays: for
// the days inside the span that no window edge cuts, from each day's
// samples and values alone; for each day an edge cuts (the span's ends, T-2W,
// T-W, the short windows' starts), from the day's instants and values,
// compared only with the edges inside that day. A sample meets the target
// when its value's key passes the target table's from_key (see
// CreateTargets). Measurements of the series in exclude are left out. The
// caller makes sure the span is covered (MeasurementCoverage).
func CountRollups(s Span, exclude []uint64) Query { return CountRollupParts(s, AllDays, exclude, nil) }

// RollupParts are parts of the days of a span that CountRollupParts counts.
type RollupParts uint8

const (
	// WholeDays are the days no edge cuts, with the latest instant of each
	// series' latest whole day. They stay the same while T moves within a
	// day, and only grow: a reader can keep their counts while a series'
	// samples on them (WholeDaySamples) do not change.
	WholeDays RollupParts = 1 << iota
	// EdgeDays are the days an edge cuts.
	EdgeDays
	// AllDays are both.
	AllDays = WholeDays | EdgeDays
)

// dayPlan is how the days of a span split: the whole days [first, end)
// but the edge days, and the edge days.
type dayPlan struct {
	first, end time.Time
	edges      []time.Time
}

func (s Span) days() dayPlan {
	edges := map[time.Time]bool{}
	cut := func(t time.Time) {
		if d := floorDay(t); !d.Equal(t) {
			edges[d] = true
		}
	}
	cut(s.From)
	cut(s.To)
	for _, i := range s.intervals() {
		if !i.empty() {
			cut(time.Unix(0, i.lo))
			cut(time.Unix(0, i.hi))
		}
	}
	return dayPlan{first: ceilDay(s.From), end: floorDay(s.To), edges: slices.SortedFunc(maps.Keys(edges), time.Time.Compare)}
}

// whole returns the condition on day of the whole days and its arguments;
// ok is false when there are none.
func (p dayPlan) whole() (where string, args []any, ok bool) {
	if !p.first.Before(p.end) {
		return "", nil, false
	}
	where, args = "day >= toDate(?) AND day < toDate(?)", []any{date(p.first), date(p.end)}
	if len(p.edges) > 0 {
		where += " AND day NOT IN (" + repeatList(len(p.edges), "toDate(?)") + ")"
		for _, d := range p.edges {
			args = append(args, date(d))
		}
	}
	return where, args, true
}

// WholeDay reports whether the day of t is one of the span's whole days.
func (s Span) WholeDay(t time.Time) bool { return s.days().wholeDay(floorDay(t)) }

// wholeDay reports whether day d (a midnight) is a whole day of the plan.
func (p dayPlan) wholeDay(d time.Time) bool {
	return !d.Before(p.first) && d.Before(p.end) && !slices.ContainsFunc(p.edges, d.Equal)
}

// wholeIn is the whole days of the plan inside an interval: none, all, or
// a range [a, b).
func (p dayPlan) wholeIn(i interval) (a, b time.Time, none, all bool) {
	a, b = maxTime(ceilDay(time.Unix(0, i.lo)), p.first), minTime(floorDay(time.Unix(0, i.hi)), p.end)
	return a, b, !a.Before(b), a.Equal(p.first) && b.Equal(p.end)
}

// WholeDaysKey describes which whole days the span has and which windows
// each lies in: two spans with the same key count their whole days alike.
func (s Span) WholeDaysKey() string {
	p := s.days()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %v", date(p.first), date(p.end), s.Municipality, p.edges)
	for _, i := range s.intervals() {
		a, z, none, all := p.wholeIn(i)
		fmt.Fprintf(&b, " [%s %s %v %v]", date(a), date(z), none, all)
	}
	return b.String()
}

// SeriesSamples are the samples of a series on some days.
type SeriesSamples struct {
	Series  uint64 `ch:"series"`
	Samples uint64 `ch:"samples"`
}

// WholeDaySamples selects, per series, its samples on the span's whole
// days (SeriesSamples), but for the series in exclude: reading one number
// per series and day, a reader knows which series gained measurements
// there since it counted them.
func WholeDaySamples(s Span, exclude []uint64) Query {
	where, args, ok := s.days().whole()
	if !ok {
		where = "0"
	}
	filter, fargs, ext := rollupFilter(s, exclude, nil)
	return Query{
		SQL:      "SELECT series, sum(samples) AS samples FROM " + MeasurementDays + " WHERE " + where + filter + " GROUP BY series",
		Args:     append(args, fargs...),
		External: ext,
	}
}

// rollupFilter restricts a read of MeasurementDays to the span's
// municipality, without the series in exclude and, when only is not nil,
// to the series in only.
func rollupFilter(s Span, exclude, only []uint64) (string, []any, []*External) {
	var filter string
	var args []any
	var ext []*External
	if s.Municipality != "" {
		filter, args = " AND mseries = ?", []any{MunicipalityHash(s.Municipality)}
	}
	list := func(name string, xs []uint64) *External {
		t := &External{Name: name, Columns: []Column{{"series", "UInt64"}}, Rows: make([][]any, 0, len(xs))}
		for _, x := range xs {
			t.Append(x)
		}
		return t
	}
	if len(exclude) > 0 {
		ext = append(ext, list("excluded_series", exclude))
		filter += " AND series NOT IN (SELECT series FROM excluded_series)"
	}
	if only != nil {
		ext = append(ext, list("wanted_series", only))
		filter += " AND series IN (SELECT series FROM wanted_series)"
	}
	return filter, args, ext
}

// CountRollupParts counts the given parts of CountRollups, of the series
// in only when it is not nil.
func CountRollupParts(s Span, parts RollupParts, exclude, only []uint64) Query {
	iv := s.intervals()
	plan := s.days()
	edgeDays := plan.edges
	filter, filterArgs, ext := rollupFilter(s, exclude, only)
	// The target, and how many of n keys at or above from_key meet it.
	target := targetColumns(s)

	var branches []string
	var args []any
	// Whole days: a day counts in a window when it lies inside it. The
	// days of a series are added up in the branch (one row per series
	// leaves it, not one per day: a third of the time of a first read).
	if where, wargs, ok := plan.whole(); ok && parts&WholeDays != 0 {
		in := func(i interval, col string) (string, []any) {
			a, b, none, all := plan.wholeIn(i)
			switch {
			case none:
				return "toUInt64(0)", nil
			case all:
				return "sum(" + col + ")", nil
			}
			return "sum(if(day >= toDate(?) AND day < toDate(?), " + col + ", toUInt64(0)))", []any{date(a), date(b)}
		}
		sel, a := counts(iv, branchColumns,
			func(i interval) (string, []any) { return in(i, "n") },
			func(i interval) (string, []any) { return in(i, "m") })
		branches = append(branches, fmt.Sprintf(`SELECT series, any(sh) AS sseries, any(mh) AS mseries, %s, toInt64(0) AS l
			FROM (
				SELECT day, series, sseries AS sh, mseries AS mh, samples AS n, %s,
					%s AS above, %s AS m
				FROM %s WHERE %s%s
			)
			GROUP BY series`, sel, target, aboveTarget, meets("n", "above"), MeasurementDays, where, filter))
		args = append(append(append(args, a...), wargs...), filterArgs...)
		// The latest instant of the whole days is on each series' latest
		// whole day: only that day's instants are read.
		zero := func(interval) (string, []any) { return "toUInt64(0)", nil }
		none, _ := counts(iv, branchColumns, zero, zero)
		branches = append(branches, fmt.Sprintf(`SELECT series, sseries, mseries, %s, arrayReduce('max', pointMap.timeKey) AS l
			FROM %s
			WHERE (day, series) IN (SELECT max(day), series FROM %s WHERE %s%s GROUP BY series)%s`,
			none, MeasurementDays, MeasurementDays, where, filter, filter))
		args = append(append(append(args, wargs...), filterArgs...), filterArgs...)
	}
	if parts&EdgeDays == 0 {
		edgeDays = nil
	}
	// Days an edge cuts, one branch each: an interval that covers the day
	// counts the whole day; one that an edge cuts compares every instant.
	for _, d := range edgeDays {
		ds, de := d.UnixNano(), d.Add(day).UnixNano()
		var inner []string
		var innerArgs []any
		cuts := map[interval]int{}
		part := func(i interval) (interval, bool, bool) { // the day's part, whole, none
			p := interval{max(i.lo, ds), min(i.hi, de)}
			return p, p.lo == ds && p.hi == de, p.empty()
		}
		alias := func(i interval) int {
			p, _, _ := part(i)
			j, ok := cuts[p]
			if !ok {
				j = len(cuts)
				cuts[p] = j
				inner = append(inner, fmt.Sprintf(
					"arraySum((t, c) -> (t >= ? AND t < ?) * c, pointMap.timeKey, pointMap.count) AS n%d", j),
					fmt.Sprintf("arraySum((t, k, c) -> (t >= ? AND t < ? AND k >= fk) * c, pointMap.timeKey, pointMap.vKey, pointMap.count) AS above%d", j),
					fmt.Sprintf("%s AS m%d", meets(fmt.Sprintf("n%d", j), fmt.Sprintf("above%d", j)), j))
				innerArgs = append(innerArgs, p.lo, p.hi, p.lo, p.hi)
			}
			return j
		}
		sel, a := counts(iv, branchColumns,
			func(i interval) (string, []any) {
				if _, whole, none := part(i); whole {
					return "n", nil
				} else if none {
					return "toUInt64(0)", nil
				}
				return fmt.Sprintf("n%d", alias(i)), nil
			},
			func(i interval) (string, []any) {
				if _, whole, none := part(i); whole {
					return "m", nil
				} else if none {
					return "toUInt64(0)", nil
				}
				return fmt.Sprintf("m%d", alias(i)), nil
			})
		extra := ""
		if len(inner) > 0 {
			extra = ", " + strings.Join(inner, ", ")
		}
		branches = append(branches, fmt.Sprintf(`SELECT series, sseries, mseries, %s, l
			FROM (
				SELECT series, sseries, mseries, samples AS n, %s,
					%s AS above, %s AS m%s,
					arrayReduce('max', arrayFilter(t -> t >= ? AND t < ?, pointMap.timeKey)) AS l
				FROM %s WHERE day = toDate(?)%s
			)`, sel, target, aboveTarget, meets("n", "above"), extra, MeasurementDays, filter))
		args = append(append(append(append(args, a...), innerArgs...), s.From.UnixNano(), s.To.UnixNano(), date(d)), filterArgs...)
	}
	if len(branches) == 0 { // nothing to count: no row
		branches = append(branches, "SELECT toUInt64(0) AS series, toUInt64(0) AS sseries, toUInt64(0) AS mseries, "+
			zeroColumns()+", toInt64(0) AS l")
	}
	short := make([]string, 0, 2*MaxShortWindows)
	for _, name := range [][2]string{{"ss", "short_samples_"}, {"sm", "short_meeting_"}} {
		for j := range MaxShortWindows {
			short = append(short, fmt.Sprintf("sum(%s%d) AS %s%d", name[0], j, name[1], j))
		}
	}
	return Query{
		SQL: `SELECT series, any(sseries) AS service_hash, any(mseries) AS municipality_hash,
			sum(sc) AS samples_c, sum(mc) AS meeting_c, sum(sp) AS samples_p, sum(mp) AS meeting_p,
			max(l) AS last_ns, ` + strings.Join(short, ", ") + `
		FROM (` + strings.Join(branches, " UNION ALL ") + `)
		GROUP BY series
		HAVING last_ns > 0`,
		Args:     args,
		External: ext,
	}
}

// targetColumns read, for a row of MeasurementDays, the SLA target of its
// series from the span's target table (CreateTargets): fk, the value key
// from which a sample is above the target, and lw, 1 when lower is better.
func targetColumns(s Span) string {
	return fmt.Sprintf("joinGet('%s', 'from_key', series) AS fk, joinGet('%s', 'lower', series) AS lw", s.Targets, s.Targets)
}

// aboveTarget counts the samples of a row of MeasurementDays whose value
// keys are at or above fk (targetColumns).
const aboveTarget = "arraySum((k, c) -> (k >= fk) * c, pointMap.vKey, pointMap.count)"

// meets is how many of n samples, above of them at or above the target's
// key, meet the target: above, or the others when lower is better.
func meets(n, above string) string {
	return fmt.Sprintf("if(lw = 1, toUInt64(%s - %s), %s)", n, above, above)
}

// zeroColumns are the count columns of a branch with nothing to count.
func zeroColumns() string {
	cols := []string{"toUInt64(0) AS sc", "toUInt64(0) AS mc", "toUInt64(0) AS sp", "toUInt64(0) AS mp"}
	for _, name := range []string{"ss", "sm"} {
		for j := range MaxShortWindows {
			cols = append(cols, fmt.Sprintf("toUInt64(0) AS %s%d", name, j))
		}
	}
	return strings.Join(cols, ", ")
}

// branchColumns name the counts of each branch of CountRollups, apart
// from the totals (ClickHouse 18.16 reads sum(x) AS x as an aggregate
// inside an aggregate), one column per short window.
var branchColumns = countNames{c: [2]string{"sc", "mc"}, p: [2]string{"sp", "mp"}, short: [2]string{"ss", "sm"}}

// repeatList is n copies of p, comma-separated.
func repeatList(n int, p string) string {
	return strings.TrimSuffix(strings.Repeat(p+", ", n), ", ")
}

// Priorities are the incident priorities, in the order of their ranks in
// the incident rollup (1 for the first): the order of their names.
var Priorities = []string{"critical", "high", "low", "medium"}

// IncidentState is a counted incident the rules look at, at T.
type IncidentState struct {
	Key          uint64 `ch:"key"`          // cityHash64(municipality, service, incident)
	ServiceHash  uint64 `ch:"service_hash"` // of a counted publisher's series of the service (ServiceHash)
	Opened       int64  `ch:"opened_ns"`    // earliest counted opening, nanoseconds since the epoch
	Target       uint32 `ch:"resolution_target_seconds"`
	PriorityRank uint8  `ch:"priority_rank"` // 1 + the index in Priorities; 0 for another name
	Resolved     int64  `ch:"resolved_ns"`   // earliest counted resolution before T; 0 when none
}

// Priority is the name of the opening's priority.
func (s IncidentState) Priority() string {
	if s.PriorityRank < 1 || int(s.PriorityRank) > len(Priorities) {
		return ""
	}
	return Priorities[s.PriorityRank-1]
}

// packed* read the incident rollup's packed opening x: instant * 2^35 +
// resolution target * 8 + priority rank.
func packedInstant(x string) string { return "toInt64(" + x + " / 34359738368)" }

func packedCode(x string) string {
	return "toInt64(" + x + " - toDecimal128(" + packedInstant(x) + ", 0) * 34359738368)"
}

func packedDeadline(x string) string {
	return packedInstant(x) + " + intDiv(" + packedCode(x) + ", 8) * 1000000000"
}

// IncidentsAt selects, from IncidentKeys, the incidents (IncidentState)
// of the services' series in counted (ServiceHash of a service and a
// publisher that counts for it at T), of one municipality or of all
// (municipality empty), that the rules look at: opened before T, and due
// in C = [T-w, T) or not resolved before T. Per incident the earliest
// counted opening stands (ties: the shorter target, then the priority's
// name), and the earliest counted resolution.
//
// Only the rows of candidates are read from IncidentKeys, found without
// reading the history: an incident with an opening due in C, or a
// resolution at or after T (IncidentTimes, ranges of its key), or a
// publisher with more openings than resolutions (IncidentOpen, which
// merges empty as incidents are resolved). Every incident the rules look
// at is one: its earliest counted opening is due in C, or the publisher of
// that opening resolved it only at or after T, or never.
func IncidentsAt(at time.Time, w time.Duration, counted []uint64, municipality string) Query {
	t := &External{Name: "counted_services", Columns: []Column{{"hash", "UInt64"}}}
	for _, h := range counted {
		t.Append(h)
	}
	filter, fargs := "sseries IN (SELECT hash FROM counted_services)", []any{}
	if municipality != "" {
		filter, fargs = "mseries = ? AND "+filter, []any{MunicipalityHash(municipality)}
	}
	T, c := at.UnixNano(), at.Add(-w).UnixNano()
	args := []any{T}
	args = append(args, fargs...) // incident_times
	args = append(args, c, T, T)
	args = append(args, fargs...) // incident_open
	args = append(args, fargs...) // incident_keys
	args = append(args, T, T, c, T)
	return Query{
		SQL: `SELECT key, hash AS service_hash, ` + packedInstant("o") + ` AS opened_ns,
			toUInt32(intDiv(` + packedCode("o") + `, 8)) AS resolution_target_seconds,
			toUInt8(` + packedCode("o") + ` % 8) AS priority_rank,
			if(r > 0 AND r < ?, r, toInt64(0)) AS resolved_ns
		FROM (
			SELECT key, any(sseries) AS hash, minIf(op, op > 0) AS o, minIf(rs, rs > 0) AS r
			FROM (
				SELECT key, sseries, finalizeAggregation(opened) AS op, finalizeAggregation(resolved) AS rs
				FROM ` + IncidentKeys + `
				PREWHERE key IN (
					SELECT key FROM ` + IncidentTimes + `
					WHERE ` + filter + ` AND (kind = 1 AND at >= ? AND at < ? OR kind = 2 AND at >= ?)
					UNION ALL
					SELECT key FROM ` + IncidentOpen + `
					WHERE ` + filter + `
					GROUP BY mseries, key, sseries
					HAVING sum(balance) > 0
				)
				WHERE ` + filter + `
			)
			GROUP BY key
		)
		WHERE o > 0 AND ` + packedInstant("o") + ` < ? AND (r = 0 OR r >= ? OR (` +
			packedDeadline("o") + ` >= ? AND ` + packedDeadline("o") + ` < ?))`,
		Args:     args,
		External: []*External{t},
	}
}

// IncidentID is the id of an incident.
type IncidentID struct {
	Key      uint64 `ch:"key"`
	Incident string `ch:"incident"`
}

// IncidentIDs selects the ids of incidents (IncidentID), looked up in
// the months of their earliest openings only.
func IncidentIDs(incidents []IncidentState) Query {
	t := &External{Name: "wanted_incidents", Columns: []Column{{"key", "UInt64"}}}
	months := map[uint32]bool{}
	for _, x := range incidents {
		t.Append(x.Key)
		o := time.Unix(0, x.Opened).UTC()
		months[uint32(o.Year()*100+int(o.Month()))] = true
	}
	var args []any
	for _, m := range slices.Sorted(maps.Keys(months)) {
		args = append(args, m)
	}
	if len(args) == 0 {
		args = append(args, uint32(0))
	}
	return Query{
		SQL: "SELECT key, any(incident) AS incident FROM " + IncidentNames + " WHERE month IN (" + repeatList(len(args), "?") +
			") AND key IN (SELECT key FROM wanted_incidents) GROUP BY key",
		Args:     args,
		External: []*External{t},
	}
}
