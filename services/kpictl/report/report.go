// Package report fetches a municipality's monthly SLA report from the
// evaluator API, as JSON decoded into the API's own types (evaluator/apiv1)
// or as the CSV or HTML the evaluator writes, and renders the JSON as text
// tables.
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // the report's time zone without the system's zone files
	"unicode"

	"github.com/assoliment/assoliment/services/evaluator/apiv1"
)

// ErrNotFound is returned for an unknown municipality.
var ErrNotFound = errors.New("not found")

// MaxBody bounds an answer of the evaluator.
const MaxBody = 64 << 20

var monthRE = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

// ValidMonth reports whether s is a month written yyyy-mm; the evaluator
// checks that it lies in its range.
func ValidMonth(s string) bool { return monthRE.MatchString(s) }

// Fetch gets the report of municipality for month (yyyy-mm) from the
// evaluator at base (e.g. http://127.0.0.1:8080) in the format of media
// (apiv1.MediaJSON, MediaCSV or MediaHTML), and returns the body as sent.
func Fetch(ctx context.Context, client *http.Client, base, municipality, month, media string) ([]byte, error) {
	u := strings.TrimRight(base, "/") + apiv1.ReportPath(municipality, month)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("report request: %w", err)
	}
	req.Header.Set("Accept", media)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("evaluator at %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("the evaluator's answer is larger than %d MiB", MaxBody>>20)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiv1.Error
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("municipality %q: %w: %s", municipality, ErrNotFound, msg)
		}
		return nil, fmt.Errorf("evaluator answered %s: %s", resp.Status, msg)
	}
	return body, nil
}

// Decode reads a JSON report.
func Decode(body []byte) (*apiv1.Report, error) {
	var r apiv1.Report
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("evaluator answer is not a report: %w", err)
	}
	return &r, nil
}

// Render writes the report as text: the period, then per provider its
// verdicts and a table of its SLAs, then the services retired during the
// month. Control characters in names are shown as '?', so a name cannot
// drive the terminal.
func Render(w io.Writer, r *apiv1.Report) error {
	// Times in the report's zone, with its abbreviations (CET, CEST);
	// with offsets when this machine does not know the zone.
	local := func(t time.Time) string { return t.Format("2 January 2006 15:04 -0700") }
	if loc, err := time.LoadLocation(r.TimeZone); err == nil {
		local = func(t time.Time) string { return t.In(loc).Format("2 January 2006 15:04 MST") }
	}
	fmt.Fprintf(w, "%s: SLA report for %s, %s to %s (%s)\n", clean(r.Municipality), clean(r.Month), local(r.From), local(r.To), clean(r.TimeZone))
	if !r.Complete {
		fmt.Fprintln(w, "The month has not ended: the report covers it up to the evaluator's clock.")
	}
	if len(r.Providers) == 0 {
		fmt.Fprintln(w, "\nNo SLA is in force at the end of the month.")
	}
	for _, p := range r.Providers {
		fmt.Fprintf(w, "\n%s (%s): %d met, %d not met, %d not measured\n", clean(p.Provider), clean(p.Delivery), p.Met, p.NotMet, p.NotMeasured)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tKPI\tTARGET\tOBJECTIVE\tSAMPLES\tCOMPLIANCE\tRESULT\tBREACH DAYS")
		for _, s := range p.SLAs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", clean(s.Service), clean(s.KPI), target(s), share(s.Objective), s.Samples,
				compliance(s), result(s), days(s.BreachDays))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.RetiredServices) > 0 {
		fmt.Fprintln(w, "\nRetired during the month (not judged):")
		for _, s := range r.RetiredServices {
			fmt.Fprintf(w, "  - %s (%s, %s), retired %s\n", clean(s.Service), clean(s.Name), clean(s.Provider), local(s.RetiredAt))
		}
	}
	return nil
}

// clean replaces control characters with '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

func target(s apiv1.ReportSLA) string {
	op := ">="
	if s.Direction == "lower_is_better" {
		op = "<="
	}
	return strings.TrimSpace(op + " " + strconv.FormatFloat(s.Target, 'g', -1, 64) + " " + clean(s.Unit))
}

func result(s apiv1.ReportSLA) string {
	switch {
	case s.Met:
		return "met"
	case s.Measured:
		return "NOT MET"
	}
	return "not measured"
}

func compliance(s apiv1.ReportSLA) string {
	if s.Compliance == nil {
		return "no data"
	}
	v := *s.Compliance
	// Two decimals, or more when two would round across the objective.
	for prec := 2; prec <= 8; prec++ {
		t := strconv.FormatFloat(v*100, 'f', prec, 64)
		if r, _ := strconv.ParseFloat(t, 64); (r/100 >= s.Objective) == (v >= s.Objective) {
			return t + " %"
		}
	}
	return strconv.FormatFloat(v*100, 'f', -1, 64) + " %"
}

func share(v float64) string {
	t := strconv.FormatFloat(v*100, 'f', 6, 64)
	return strings.TrimRight(strings.TrimRight(t, "0"), ".") + " %"
}

// days writes breach days as days of the month: "3, 4, 28".
func days(dates []string) string {
	if len(dates) == 0 {
		return "-"
	}
	out := make([]string, len(dates))
	for i, d := range dates {
		if t, err := time.Parse(time.DateOnly, d); err == nil {
			out[i] = strconv.Itoa(t.Day())
		} else {
			out[i] = clean(d)
		}
	}
	return strings.Join(out, ", ")
}
