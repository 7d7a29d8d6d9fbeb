package report

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/apiv1"
)

// Results of an SLA over the month, as the CSV and the page write them.
const (
	ResultMet         = "met"
	ResultNotMet      = "not_met"
	ResultNotMeasured = "not_measured"
)

// Result is met, not_met or not_measured.
func Result(s *apiv1.ReportSLA) string {
	switch {
	case s.Met:
		return ResultMet
	case s.Measured:
		return ResultNotMet
	}
	return ResultNotMeasured
}

// csvColumns come first on every row; one column per day of the period
// follows, named by its date, holding the day's compliance.
var csvColumns = []string{"municipality", "month", "time_zone", "provider", "delivery", "service", "service_name", "area",
	"kpi", "sla_name", "unit", "direction", "target", "objective", "defined_at", "samples", "meeting", "compliance", "result",
	"breach_days"}

// WriteCSV writes the report as CSV (RFC 4180, CRLF line ends): a header,
// then one row per SLA, providers in the report's order. Numbers are
// written in full precision; a ratio without data is an empty cell; breach
// days are separated by spaces. Every text cell is quoted, and one that
// starts with a character a spreadsheet reads as a formula (= + - @, tab or
// carriage return) is prefixed with an apostrophe, so no name a publisher
// chose runs as a formula.
func WriteCSV(w io.Writer, r *apiv1.Report) error {
	bw := bufio.NewWriter(w)
	var days []string
	if len(r.Providers) > 0 && len(r.Providers[0].SLAs) > 0 {
		for _, d := range r.Providers[0].SLAs[0].Days {
			days = append(days, d.Date)
		}
	}
	header := make([]string, 0, len(csvColumns)+len(days))
	for _, c := range append(append([]string{}, csvColumns...), days...) {
		header = append(header, csvText(c))
	}
	writeRow(bw, header)
	for _, p := range r.Providers {
		for i := range p.SLAs {
			s := &p.SLAs[i]
			row := []string{
				csvText(r.Municipality), csvText(r.Month), csvText(r.TimeZone), csvText(p.Provider), csvText(p.Delivery),
				csvText(s.Service), csvText(s.ServiceName), csvText(s.Area), csvText(s.KPI), csvText(s.Name), csvText(s.Unit),
				csvText(s.Direction), csvNumber(s.Target), csvNumber(s.Objective), csvText(s.DefinedAt.Format(time.RFC3339Nano)),
				strconv.Itoa(s.Samples), strconv.Itoa(s.Meeting), csvRatio(s.Compliance), csvText(Result(s)),
				csvText(strings.Join(s.BreachDays, " ")),
			}
			for _, d := range s.Days {
				row = append(row, csvRatio(d.Compliance))
			}
			writeRow(bw, row)
		}
	}
	return bw.Flush()
}

func writeRow(w *bufio.Writer, cells []string) {
	for i, c := range cells {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString(c)
	}
	w.WriteString("\r\n")
}

// csvText quotes a text cell, neutralising a leading formula character.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		s = "'" + s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func csvNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func csvRatio(v *float64) string {
	if v == nil {
		return ""
	}
	return csvNumber(*v)
}
