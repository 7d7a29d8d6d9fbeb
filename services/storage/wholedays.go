package storage

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// WholeDayCounts holds the counts of the whole days of evaluation spans per
// series, as evaluators computed them (migrations/006_whole_day_counts.sql).
const WholeDayCounts = "whole_day_counts"

// wholeDaysVersion is part of every KeptSpan: change it whenever what
// CountRollupParts counts for WholeDays changes, so that no reader takes
// the rows an earlier version wrote.
const wholeDaysVersion = "1"

// KeptSpan names the rows of WholeDayCounts that can hold for the whole
// days of a span with some series left out: ID hashes the days, the
// windows each lies in and the series left out; End (days since
// 1970-01-01) is the day after the last whole day, the table's partition.
type KeptSpan struct {
	ID  uint64
	End uint32
}

// KeptSpanOf is the KeptSpan of the whole days of s without the series in
// excluded (in any order).
func KeptSpanOf(s Span, excluded []uint64) KeptSpan {
	ex := slices.Sorted(slices.Values(excluded))
	return KeptSpan{
		ID:  Hash(wholeDaysVersion, s.WholeDaysKey(), fmt.Sprint(ex)),
		End: uint32(s.days().end.Unix() / 86400),
	}
}

// KeptCounts are the counts of a series' whole days (SeriesCounts) with
// what they hold for: its samples on those days and its SLA target.
type KeptCounts struct {
	SeriesCounts
	Samples uint64  `ch:"samples"`
	Lower   uint8   `ch:"lower"` // 1: lower is better
	Target  float64 `ch:"target"`
}

// KeptCountsColumns are the columns of WholeDayCounts KeptCountsRow fills.
var KeptCountsColumns = []string{"end_day", "span", "series", "samples", "lower", "target", "service_hash", "municipality_hash",
	"samples_c", "meeting_c", "samples_p", "meeting_p", "last_ns",
	"short_samples_0", "short_samples_1", "short_samples_2", "short_samples_3",
	"short_meeting_0", "short_meeting_1", "short_meeting_2", "short_meeting_3"}

// KeptCountsValues are the columns of WholeDayCounts (KeptCountsColumns)
// holding ks in span, as InsertColumns takes them.
func KeptCountsValues(span KeptSpan, ks []KeptCounts) []any {
	n := len(ks)
	ends, spans := make([]uint32, n), make([]uint64, n)
	lower := make([]uint8, n)
	target := make([]float64, n)
	last := make([]int64, n)
	var u [16][]uint64 // the UInt64 columns after span, but lower and target
	for i := range u {
		u[i] = make([]uint64, n)
	}
	for i := range ks {
		k, x := &ks[i], &ks[i].ShortCounts
		ends[i], spans[i], lower[i], target[i], last[i] = span.End, span.ID, k.Lower, k.Target, k.Last
		for j, v := range [16]uint64{k.Series, k.Samples, k.ServiceHash, k.MunicipalityHash, k.SamplesC, k.MeetingC, k.SamplesP, k.MeetingP,
			x.ShortSamples0, x.ShortSamples1, x.ShortSamples2, x.ShortSamples3,
			x.ShortMeeting0, x.ShortMeeting1, x.ShortMeeting2, x.ShortMeeting3} {
			u[j][i] = v
		}
	}
	return []any{ends, spans, u[0], u[1], lower, target, u[2], u[3], u[4], u[5], u[6], u[7], last,
		u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]}
}

// KeptWholeDays selects the rows of span (KeptCounts). A series may have
// several: one per samples and target it was counted with.
func KeptWholeDays(span KeptSpan) Query {
	return Query{
		SQL: `SELECT series, samples, lower, target, service_hash, municipality_hash,
			samples_c, meeting_c, samples_p, meeting_p, last_ns,
			short_samples_0, short_samples_1, short_samples_2, short_samples_3,
			short_meeting_0, short_meeting_1, short_meeting_2, short_meeting_3
		FROM ` + WholeDayCounts + ` WHERE end_day = ? AND span = ?`,
		Args: []any{span.End, span.ID},
	}
}

// Partition is a partition of a table, as system.parts names it.
type Partition struct {
	Name string `ch:"partition"`
}

// KeptPartitions selects the partitions of WholeDayCounts (Partition).
func KeptPartitions() Query {
	return Query{
		SQL:  "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = ? AND active",
		Args: []any{WholeDayCounts},
	}
}

// KeptPartitionsBefore returns the partitions of WholeDayCounts, among
// parts, whose end day is before end.
func KeptPartitionsBefore(parts []Partition, end uint32) []uint32 {
	var out []uint32
	for _, p := range parts {
		if day, err := strconv.ParseUint(p.Name, 10, 32); err == nil && uint32(day) < end {
			out = append(out, uint32(day))
		}
	}
	return out
}

// DropKeptPartition drops the rows of WholeDayCounts of the spans that end
// on day end.
func DropKeptPartition(end uint32) Query {
	return Query{SQL: fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", WholeDayCounts, end)}
}

// ShiftedCounts are, for one series, what the whole days of a later span
// change in the counts of an earlier span's whole days: in each window,
// the counts of the days that enter it less those of the days that leave
// it; Samples, the samples of the days that become whole less those of
// the days that stop being whole; Last, the latest instant of the days
// that become whole.
type ShiftedCounts struct {
	Series           uint64 `ch:"series"`
	ServiceHash      uint64 `ch:"service_hash"`
	MunicipalityHash uint64 `ch:"municipality_hash"`
	SamplesC         int64  `ch:"samples_c"`
	MeetingC         int64  `ch:"meeting_c"`
	SamplesP         int64  `ch:"samples_p"`
	MeetingP         int64  `ch:"meeting_p"`
	ShortSamples0    int64  `ch:"short_samples_0"`
	ShortSamples1    int64  `ch:"short_samples_1"`
	ShortSamples2    int64  `ch:"short_samples_2"`
	ShortSamples3    int64  `ch:"short_samples_3"`
	ShortMeeting0    int64  `ch:"short_meeting_0"`
	ShortMeeting1    int64  `ch:"short_meeting_1"`
	ShortMeeting2    int64  `ch:"short_meeting_2"`
	ShortMeeting3    int64  `ch:"short_meeting_3"`
	Last             int64  `ch:"last_ns"`
	Samples          int64  `ch:"shifted_samples"`
}

// WholeDaysShift selects, per series, what changes from the counts of the
// whole days of span from to those of span to (ShiftedCounts): the days a
// window gains or loses when T moves to another day, about one per window
// edge, are read instead of every whole day again (a tenth of them at
// midnight). Counts over from's whole days shifted (SeriesCounts.Shift)
// are the counts over to's whole days, provided no sample
// came on from's whole days in between (MeasurementDays only gains rows:
// compare the samples) and the targets are the same. The series in
// exclude are left out. ok is false when the spans cannot be compared
// (other municipality, other windows).
func WholeDaysShift(from, to Span, exclude []uint64) (q Query, ok bool) {
	iv0, iv1 := from.intervals(), to.intervals()
	if from.Municipality != to.Municipality || len(iv0) != len(iv1) {
		return Query{}, false
	}
	for w := range iv0 {
		if iv0[w].empty() != iv1[w].empty() {
			return Query{}, false
		}
	}
	p0, p1 := from.days(), to.days()
	// The whole days of a plan, inside window w when w >= 0.
	whole := func(p dayPlan, iv []interval, w int) map[time.Time]bool {
		a, b := p.first, p.end
		if w >= 0 {
			var none bool
			if a, b, none, _ = p.wholeIn(iv[w]); none || iv[w].empty() {
				return nil
			}
		}
		out := map[time.Time]bool{}
		for d := a; d.Before(b); d = d.Add(day) {
			if p.wholeDay(d) {
				out[d] = true
			}
		}
		return out
	}
	moved := map[time.Time]bool{}
	minus := func(x, y map[time.Time]bool) []time.Time {
		var out []time.Time
		for d := range x {
			if !y[d] {
				out = append(out, d)
				moved[d] = true
			}
		}
		slices.SortFunc(out, time.Time.Compare)
		return out
	}
	// The days each window gains and loses, by the window's index in the
	// intervals, and the whole days gained and lost.
	var gained, lost [][]time.Time
	for w := range iv1 {
		gained = append(gained, minus(whole(p1, iv1, w), whole(p0, iv0, w)))
		lost = append(lost, minus(whole(p0, iv0, w), whole(p1, iv1, w)))
	}
	wholeGained, wholeLost := minus(whole(p1, iv1, -1), whole(p0, iv0, -1)), minus(whole(p0, iv0, -1), whole(p1, iv1, -1))
	// col on the days gained less col on the days lost.
	var args []any
	sum := func(gained, lost []time.Time, col string) string {
		on := func(ds []time.Time) string {
			if len(ds) == 0 {
				return "toInt64(0)"
			}
			for _, d := range ds {
				args = append(args, date(d))
			}
			return "toInt64(if(day IN (" + repeatList(len(ds), "toDate(?)") + "), " + col + ", toUInt64(0)))"
		}
		if len(gained) == 0 && len(lost) == 0 {
			return "toInt64(0)"
		}
		return "sum(" + on(gained) + " - " + on(lost) + ")"
	}
	window := map[interval]int{}
	for w, i := range iv1 {
		window[i] = w
	}
	changes := seriesColumns
	changes.zero = "toInt64(0)"
	sel, _ := counts(iv1, changes,
		func(i interval) (string, []any) { return sum(gained[window[i]], lost[window[i]], "n"), nil },
		func(i interval) (string, []any) { return sum(gained[window[i]], lost[window[i]], "m"), nil })
	last := "toInt64(0)"
	if len(wholeGained) > 0 {
		last = "max(if(day IN (" + repeatList(len(wholeGained), "toDate(?)") + "), dl, toInt64(0)))"
		for _, d := range wholeGained {
			args = append(args, date(d))
		}
	}
	samples := sum(wholeGained, wholeLost, "n")
	days := slices.SortedFunc(maps.Keys(moved), time.Time.Compare)
	where := "0" // no day moved: no row
	if len(days) > 0 {
		where = "day IN (" + repeatList(len(days), "toDate(?)") + ")"
		for _, d := range days {
			args = append(args, date(d))
		}
	}
	filter, filterArgs, ext := rollupFilter(to, exclude, nil)
	return Query{
		SQL: fmt.Sprintf(`SELECT series, any(sh) AS service_hash, any(mh) AS municipality_hash,
				%s, %s AS last_ns, %s AS shifted_samples
			FROM (
				SELECT day, series, sseries AS sh, mseries AS mh, samples AS n, %s,
					%s AS above, %s AS m,
					arrayReduce('max', pointMap.timeKey) AS dl
				FROM %s WHERE %s%s
			)
			GROUP BY series`, sel, last, samples, targetColumns(to), aboveTarget, meets("n", "above"), MeasurementDays, where, filter),
		Args:     append(args, filterArgs...),
		External: ext,
	}, true
}
