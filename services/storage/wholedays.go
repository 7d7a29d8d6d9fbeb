package storage

import (
	"fmt"
	"slices"
	"strconv"
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
