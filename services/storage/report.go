package storage

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DayCounts are the measurements of one SLA series (one KPI of one service
// from one publisher) on one day of a monthly report.
type DayCounts struct {
	Service   string `ch:"service"`
	KPI       string `ch:"kpi"`
	Publisher string `ch:"publisher"`
	Day       uint32 `ch:"day"` // 1 for the first day asked for
	Samples   uint64 `ch:"samples"`
	Meeting   uint64 `ch:"meeting"` // of Samples, meeting the series' target
}

// CountDays counts, per series of targets and per day (DayCounts), the
// measurements of municipality in [days[0], to), exact to the nanosecond,
// and how many meet the series' target. days are the first instants of
// the days, in order (the calendar is the caller's, so a day may last 23
// or 25 hours); a measurement belongs to the last day that starts at or
// before it. Only the series of targets are read, so a caller that
// passes the counted series applies the publisher rule. final reads
// measurements with FINAL (identities stored twice pending).
//
// The day starts are numbers the caller computes, never values of events,
// so they are written into the SQL text as one array literal; the names
// travel as an external table and are matched by the series hash.
func CountDays(municipality string, targets []Target, days []time.Time, to time.Time, final bool) Query {
	t := &External{Name: "report_slas", Columns: []Column{{"municipality", "String"}, {"service", "String"}, {"kpi", "String"},
		{"publisher", "String"}, {"lower", "UInt8"}, {"target", "Float64"}}}
	for _, x := range targets {
		lower := uint8(0)
		if x.LowerIsBetter {
			lower = 1
		}
		t.Append(x.Municipality, x.Service, x.KPI, x.Publisher, lower, x.Target)
	}
	starts := make([]string, len(days))
	for i, d := range days {
		starts[i] = strconv.FormatInt(d.UnixNano(), 10)
	}
	from := to
	if len(days) > 0 {
		from = days[0]
	}
	f := ""
	if final {
		f = " FINAL"
	}
	const hash = "cityHash64(municipality, service, kpi, publisher)"
	return Query{
		SQL: fmt.Sprintf(`SELECT service, kpi, publisher, day, samples, meeting FROM (
			SELECT series, day, count() AS samples, toUInt64(sum(ok)) AS meeting FROM (
				SELECT series, day, if(lower = 1, value <= target, value >= target) AS ok
				FROM (
					SELECT series, value, %s AS t, toUInt32(arrayCount(b -> b <= t, CAST([%s] AS Array(Int64)))) AS day FROM %s%s
					WHERE municipality = ? AND time >= toDateTime(?) AND time <= toDateTime(?) AND t >= ? AND t < ?
				) AS m ALL INNER JOIN (SELECT %s AS series, lower, target FROM report_slas) AS s USING series
			) GROUP BY series, day
		) AS c ALL INNER JOIN (SELECT %s AS series, service, kpi, publisher FROM report_slas) AS n USING series`,
			EventNS, strings.Join(starts, ", "), Measurements, f, hash, hash),
		Args:     []any{municipality, second(from), second(to), from.UnixNano(), to.UnixNano()},
		External: []*External{t},
	}
}
