package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/apiv1"
)

//go:embed page.html
var pageSource string

// page is the printable report: html/template escapes every value the
// catalogue holds, the charts are inline SVG computed here, and the page
// loads nothing and runs no script.
var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"add":  func(a, b int) int { return a + b },
	"sub":  func(a, b int) int { return a - b },
	"half": func(a, b int) float64 { return float64(a+b) / 2 },
	"longTime": func(t time.Time) string {
		return t.Format("2 January 2006 15:04 MST")
	},
	"share": share,
	"target": func(s apiv1.ReportSLA) string {
		op := "≥"
		if s.Direction == contract.LowerIsBetter {
			op = "≤"
		}
		return strings.TrimSpace(op + " " + strconv.FormatFloat(s.Target, 'g', -1, 64) + " " + s.Unit)
	},
	"compliance": func(s apiv1.ReportSLA) string {
		if s.Compliance == nil {
			return "no data"
		}
		return percent(*s.Compliance, s.Objective)
	},
	"result": func(s apiv1.ReportSLA) string { return Result(&s) },
	"resultText": func(s apiv1.ReportSLA) string {
		switch Result(&s) {
		case ResultMet:
			return "met"
		case ResultNotMet:
			return "not met"
		}
		return "not measured"
	},
	"redefined": func(s apiv1.ReportSLA, r *apiv1.Report) bool { return s.DefinedAt.After(r.From) },
	"days": func(dates []string) string {
		out := make([]string, len(dates))
		for i, d := range dates {
			out[i] = strings.TrimLeft(d[len(d)-2:], "0")
		}
		return strings.Join(out, ", ")
	},
}).Parse(pageSource))

// WriteHTML writes the report as one printable HTML page with a chart of
// daily compliance per provider.
func WriteHTML(w io.Writer, r *apiv1.Report) error {
	charts := make([]chart, len(r.Providers))
	for i := range r.Providers {
		charts[i] = newChart(&r.Providers[i])
	}
	from := r.From
	var buf bytes.Buffer
	if err := page.Execute(&buf, struct {
		R         *apiv1.Report
		Charts    []chart
		MonthName string
	}{r, charts, from.Month().String() + " " + strconv.Itoa(from.Year())}); err != nil {
		return fmt.Errorf("report page: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
