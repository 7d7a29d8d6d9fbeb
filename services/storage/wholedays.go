package storage

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
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

// KeptCountsRow is the row of WholeDayCounts of k in span.
func KeptCountsRow(span KeptSpan, k KeptCounts) []any {
	x := k.ShortCounts
	return []any{span.End, span.ID, k.Series, k.Samples, k.Lower, k.Target, k.ServiceHash, k.MunicipalityHash,
		k.SamplesC, k.MeetingC, k.SamplesP, k.MeetingP, k.Last,
		x.ShortSamples0, x.ShortSamples1, x.ShortSamples2, x.ShortSamples3,
		x.ShortMeeting0, x.ShortMeeting1, x.ShortMeeting2, x.ShortMeeting3}
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
// add to the counts of an earlier span's whole days (Part ShiftAdded), or
// take from them (ShiftRemoved): in each window, the counts of the days
// that enter it (or leave it); Samples, the samples of the days that
// become whole (or stop being whole). A row of Part ShiftLatest has only
// Last: the latest instant of the later span's whole days.
type ShiftedCounts struct {
	Part uint8 `ch:"part"`
	SeriesCounts
	Samples uint64 `ch:"shifted_samples"`
}

// The parts of WholeDaysShift.
const (
	ShiftRemoved uint8 = iota
	ShiftAdded
	ShiftLatest
)

// WholeDaysShift selects, per series, what changes from the counts of the
// whole days of span from to those of span to (ShiftedCounts): the days a
// window gains or loses when T moves to another day, about one per window
// edge, are read instead of every whole day again (a tenth of them at
// midnight). Counts over from's whole days plus the added rows minus the
// removed ones are the counts over to's whole days, provided no sample
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
			if !slices.ContainsFunc(p.edges, d.Equal) {
				out[d] = true
			}
		}
		return out
	}
	minus := func(x, y map[time.Time]bool) []time.Time {
		var out []time.Time
		for d := range x {
			if !y[d] {
				out = append(out, d)
			}
		}
		slices.SortFunc(out, time.Time.Compare)
		return out
	}
	moved := map[time.Time]bool{}
	type sets struct {
		windows [][]time.Time // per window
		whole   []time.Time
	}
	diff := func(p, q dayPlan, ivp, ivq []interval) sets {
		var s sets
		for w := range ivp {
			s.windows = append(s.windows, minus(whole(p, ivp, w), whole(q, ivq, w)))
		}
		s.whole = minus(whole(p, ivp, -1), whole(q, ivq, -1))
		for _, ds := range append(slices.Clone(s.windows), s.whole) {
			for _, d := range ds {
				moved[d] = true
			}
		}
		return s
	}
	added, removed := diff(p1, p0, iv1, iv0), diff(p0, p1, iv0, iv1)
	in := func(ds []time.Time, col, zero string) (string, []any) {
		if len(ds) == 0 {
			return zero, nil
		}
		args := make([]any, 0, len(ds))
		for _, d := range ds {
			args = append(args, date(d))
		}
		return "if(day IN (" + repeatList(len(ds), "toDate(?)") + "), " + col + ", " + zero + ")", args
	}
	window := map[interval]int{}
	for w, i := range iv1 {
		window[i] = w
	}
	filter, filterArgs, ext := rollupFilter(to, exclude, nil)
	target := fmt.Sprintf("joinGet('%s', 'from_key', series) AS fk, joinGet('%s', 'lower', series) AS lw", to.Targets, to.Targets)
	days := slices.SortedFunc(maps.Keys(moved), time.Time.Compare)
	where := "0" // no day moved: no row
	if len(days) > 0 {
		where = "day IN (" + repeatList(len(days), "toDate(?)") + ")"
	}
	var branches []string
	var args []any
	for _, b := range []struct {
		part uint8
		sets
	}{{ShiftAdded, added}, {ShiftRemoved, removed}} {
		sum := func(ds []time.Time, col string) (string, []any) {
			e, a := in(ds, col, "toUInt64(0)")
			if len(ds) == 0 {
				return e, nil
			}
			return "sum(" + e + ")", a
		}
		sel, selArgs := counts(iv1, seriesColumns,
			func(i interval) (string, []any) { return sum(b.windows[window[i]], "n") },
			func(i interval) (string, []any) { return sum(b.windows[window[i]], "m") })
		samples, samplesArgs := sum(b.whole, "n")
		branches = append(branches, fmt.Sprintf(`SELECT series, toUInt8(%d) AS part, any(sh) AS service_hash, any(mh) AS municipality_hash,
				%s, toInt64(0) AS last_ns, %s AS shifted_samples
			FROM (
				SELECT day, series, sseries AS sh, mseries AS mh, samples AS n, %s,
					arraySum((k, c) -> (k >= fk) * c, pointMap.vKey, pointMap.count) AS above,
					if(lw = 1, toUInt64(n - above), above) AS m
				FROM %s WHERE %s%s
			)
			GROUP BY series`, b.part, sel, samples, target, MeasurementDays, where, filter))
		args = append(append(args, selArgs...), samplesArgs...)
		for _, d := range days {
			args = append(args, date(d))
		}
		args = append(args, filterArgs...)
	}
	// The latest instant: on each series' latest whole day, which may be
	// one that stopped being whole (a short window's edge moved onto it).
	if wh, whArgs, ok := p1.whole(); ok {
		zero := func(interval) (string, []any) { return "toUInt64(0)", nil }
		none, _ := counts(iv1, seriesColumns, zero, zero)
		branches = append(branches, fmt.Sprintf(`SELECT series, toUInt8(%d) AS part, sseries AS service_hash, mseries AS municipality_hash,
				%s, arrayReduce('max', pointMap.timeKey) AS last_ns, toUInt64(0) AS shifted_samples
			FROM %s
			WHERE (day, series) IN (SELECT max(day), series FROM %s WHERE %s%s GROUP BY series)%s`,
			ShiftLatest, none, MeasurementDays, MeasurementDays, wh, filter, filter))
		args = append(append(append(args, whArgs...), filterArgs...), filterArgs...)
	}
	return Query{SQL: strings.Join(branches, " UNION ALL "), Args: args, External: ext}, true
}
