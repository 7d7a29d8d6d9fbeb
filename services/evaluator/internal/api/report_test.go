package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/apiv1"
	"github.com/assoliment/assoliment/services/evaluator/internal/api"
	"github.com/assoliment/assoliment/services/evaluator/internal/report"
	"github.com/assoliment/assoliment/services/platform/httpserver"
)

var madrid = func() *time.Location {
	l, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		panic(err)
	}
	return l
}()

// fakeReporter answers every known municipality with a report full of
// hostile names; a report of the month hold reports on started and waits
// for release.
type fakeReporter struct {
	mu      sync.Mutex
	err     error
	hold    string
	started chan string
	release chan struct{}
	calls   []string
}

func (f *fakeReporter) Location() *time.Location { return madrid }

func (f *fakeReporter) Build(ctx context.Context, m string, month report.Month, now time.Time) (*apiv1.Report, bool, error) {
	f.mu.Lock()
	f.calls = append(f.calls, m+" "+month.String())
	err := f.err
	f.mu.Unlock()
	if f.hold != "" && month.String() == f.hold {
		f.started <- month.String()
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	if err != nil {
		return nil, false, err
	}
	if m == "nowhere" {
		return nil, false, nil
	}
	return hostileReport(m, month), true, nil
}

func (f *fakeReporter) called() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// hostileReport has names chosen to break out of HTML and to run as
// spreadsheet formulas.
func hostileReport(m string, month report.Month) *apiv1.Report {
	from, end := month.Start(madrid), month.End(madrid)
	days := month.Days(madrid, end)
	sla := func(service, name, kpi, kpiName, unit, area string, samples, meeting int) apiv1.ReportSLA {
		s := apiv1.ReportSLA{Service: service, ServiceName: name, Area: area, KPI: kpi, Name: kpiName, Unit: unit,
			Direction: "higher_is_better", Target: -2.5, Objective: 0.9, DefinedAt: from.Add(-time.Hour), Samples: samples, Meeting: meeting,
			Measured: samples >= 10, BreachDays: []string{}}
		for i, d := range days {
			day := apiv1.ReportDay{Date: d.Format(time.DateOnly)}
			if i%3 == 0 {
				day.Samples, day.Meeting = 4, 3
				day.Compliance = new(0.75)
				day.Breach = true
				s.BreachDays = append(s.BreachDays, day.Date)
			}
			s.Days = append(s.Days, day)
		}
		if s.Measured {
			s.Compliance = new(float64(meeting) / float64(samples))
			s.Met = *s.Compliance >= s.Objective
		}
		return s
	}
	return &apiv1.Report{
		Municipality: m, Month: month.String(), TimeZone: "Europe/Madrid", From: from, To: end, Complete: true, MinSamples: 10,
		Providers: []apiv1.ReportProvider{
			{Provider: "p1", Delivery: "concession", NotMet: 1, NotMeasured: 1, SLAs: []apiv1.ReportSLA{
				sla("s1", `<script>alert("x")</script>`, "k1", `=HYPERLINK("http://example.invalid","x")`, "@SUM(A1)", "-2+3", 44, 33),
				sla("s2", "+cmd|' /C calc'!A0", "k2", "\tname, with \"quotes\"\nand a line", "\r=1", "area", 3, 3),
			}},
			{Provider: "council", Delivery: "own", Met: 1, SLAs: []apiv1.ReportSLA{
				sla("s3", "Oficina d'atenció", "k3", "Temps d'espera", "min", "citizen-services", 100, 95),
			}},
		},
		RetiredServices: []apiv1.RetiredService{{Service: "old", Name: "<b>bold</b>", Provider: "p9", RetiredAt: from.Add(48 * time.Hour)}},
	}
}

func reportServer(t *testing.T, f *fake, rep *fakeReporter, maxOnDemand int, clock time.Time) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	api.Routes(mux, f, api.Options{MaxOnDemand: maxOnDemand, Now: func() time.Time { return clock }, Reports: rep},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(httpserver.ReadOnly(mux))
	t.Cleanup(srv.Close)
	return srv
}

func getWith(t *testing.T, method, url, accept string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// TestReportFormats: the format follows ?format= when given, else
// Accept (JSON when absent or anything goes), and every free-text value is
// escaped for its format.
func TestReportFormats(t *testing.T) {
	rep := &fakeReporter{}
	srv := reportServer(t, &fake{}, rep, 2, now)
	url := srv.URL + apiv1.ReportPath("vic", "2026-10")
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	for _, c := range []struct {
		query, accept, want string
	}{
		{"", "", apiv1.MediaJSON},
		{"", "*/*", apiv1.MediaJSON},
		{"", "application/json", apiv1.MediaJSON},
		{"", "text/csv", apiv1.MediaCSV},
		{"", browser, apiv1.MediaHTML},
		{"", "text/*", apiv1.MediaHTML},
		{"", "application/json;q=0.5, text/csv;q=0.9", apiv1.MediaCSV},
		{"?format=json", "text/html", apiv1.MediaJSON},
		{"?format=csv", "application/json", apiv1.MediaCSV},
		{"?format=html", "image/png", apiv1.MediaHTML},
	} {
		a := getWith(t, http.MethodGet, url+c.query, c.accept)
		if a.code != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), c.want) || a.header.Get("Vary") != "Accept" {
			t.Errorf("%q Accept %q: %d %q Vary %q; want %s", c.query, c.accept, a.code, a.header.Get("Content-Type"), a.header.Get("Vary"), c.want)
		}
	}

	// JSON: the report as built.
	var r apiv1.Report
	if a := getWith(t, http.MethodGet, url, ""); json.Unmarshal(a.body, &r) != nil || r.Municipality != "vic" || r.Month != "2026-10" ||
		len(r.Providers) != 2 || r.Providers[0].SLAs[0].ServiceName != `<script>alert("x")</script>` || len(r.Providers[0].SLAs[0].Days) != 31 {
		t.Errorf("JSON: %s", a.body)
	}

	// CSV: every text cell quoted, formulas neutralised, CRLF line ends.
	a := getWith(t, http.MethodGet, url+"?format=csv", "")
	if a.header.Get("Content-Disposition") != `attachment; filename="sla-report-vic-2026-10.csv"` || a.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("CSV headers: %v", a.header)
	}
	raw := string(a.body)
	for _, want := range []string{`"'=HYPERLINK(""http://example.invalid"",""x"")"`, `"'@SUM(A1)"`, `"'-2+3"`, `"'+cmd|' /C calc'!A0"`,
		"\"'\tname, with \"\"quotes\"\"\nand a line\"", "\"'\r=1\"", `"<script>alert(""x"")</script>"`, ",-2.5,0.9,", "\r\n"} {
		if !strings.Contains(raw, want) {
			t.Errorf("CSV lacks %q:\n%s", want, raw)
		}
	}
	rows, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("CSV: %v, %d rows\n%s", err, len(rows), raw)
	}
	header := rows[0]
	if header[0] != "municipality" || header[19] != "breach_days" || header[20] != "2026-10-01" || len(header) != 20+31 {
		t.Errorf("CSV header %q", header)
	}
	for _, row := range rows[1:] {
		if len(row) != len(header) {
			t.Errorf("CSV row of %d cells, header of %d", len(row), len(header))
		}
		for i, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) && header[i] != "target" {
				t.Errorf("CSV cell %s = %q starts a formula", header[i], cell)
			}
		}
	}
	if row := rows[1]; row[9] != `'=HYPERLINK("http://example.invalid","x")` || row[17] != "0.75" || row[18] != "not_met" ||
		row[20] != "0.75" || row[21] != "" || !strings.HasPrefix(row[19], "2026-10-01 2026-10-04") {
		t.Errorf("CSV first SLA %q", row)
	}
	if row := rows[2]; row[17] != "" || row[18] != "not_measured" {
		t.Errorf("CSV unmeasured SLA %q", row)
	}

	// HTML: escaped, self-contained, a chart per provider.
	a = getWith(t, http.MethodGet, url+"?format=html", "")
	page := string(a.body)
	if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, bad := range []string{"<script", "<b>bold", "<link", " src=", " href=", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;", "&lt;b&gt;bold&lt;/b&gt;", `<svg class="chart"`, "75.00 %", "not measured", "Oficina d&#39;atenció"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if n := strings.Count(page, `<svg class="chart"`); n != 2 {
		t.Errorf("%d charts, want 2", n)
	}

	// HEAD answers the headers of GET.
	if a := getWith(t, http.MethodHead, url+"?format=csv", ""); a.code != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/csv") || len(a.body) != 0 {
		t.Errorf("HEAD: %d %v %d bytes", a.code, a.header, len(a.body))
	}
}

// TestReportStatuses: every refusal is JSON, and no refused request
// builds a report.
func TestReportStatuses(t *testing.T) {
	rep := &fakeReporter{}
	srv := reportServer(t, &fake{}, rep, 2, now) // 2026-11-20T12:00:00Z
	path := func(m, month string) string {
		return srv.URL + apiv1.MunicipalitiesPath + "/" + m + "/reports/" + month
	}
	for _, month := range []string{"2026-1", "2026-13", "2026-00", "26-10", "2026-10-01", "2026_10", "2026-1a", "-2026-1",
		"%EF%BC%92026-10", "2026-%0A1", strings.Repeat("2", 4000)} {
		errorIs(t, "month "+month, getWith(t, http.MethodGet, path("vic", month), ""), 400, "month must be yyyy-mm, such as 2026-10")
	}
	for _, month := range []string{"1999-12", "0000-01", "2026-12", "9999-12"} {
		errorIs(t, "month "+month, getWith(t, http.MethodGet, path("vic", month), ""), 400,
			"month must be between 2000-01 and 2026-11 (the current month in Europe/Madrid)")
	}
	for _, month := range []string{"2000-01", "2026-11"} {
		if a := getWith(t, http.MethodGet, path("vic", month), ""); a.code != 200 {
			t.Errorf("month %s, on the edge of the range: %d %s", month, a.code, a.body)
		}
	}
	errorIs(t, "bad slug", getWith(t, http.MethodGet, path("Vic%3Cscript%3E", "2026-10"), ""), 400, "municipality must match")
	errorIs(t, "long slug", getWith(t, http.MethodGet, path(strings.Repeat("a", 64), "2026-10"), ""), 400, "municipality must match")
	errorIs(t, "format", getWith(t, http.MethodGet, path("vic", "2026-10")+"?format=pdf", ""), 400, "format must be json, csv or html")
	errorIs(t, "empty format", getWith(t, http.MethodGet, path("vic", "2026-10")+"?format=", ""), 400, "format must be json, csv or html")
	errorIs(t, "not acceptable", getWith(t, http.MethodGet, path("vic", "2026-10"), "image/png, application/pdf"), 406, "text/csv")
	errorIs(t, "text/html;q=0", getWith(t, http.MethodGet, path("vic", "2026-10"), "text/html;q=0"), 406, "text/html")
	errorIs(t, "malformed Accept", getWith(t, http.MethodGet, path("vic", "2026-10"), "((("), 400, "Accept header is malformed")
	errorIs(t, "huge Accept", getWith(t, http.MethodGet, path("vic", "2026-10"), strings.Repeat("text/x;a=b, ", 5000)+"image/png"), 406, "text/html")
	errorIs(t, "trailing slash", getWith(t, http.MethodGet, path("vic", "2026-10")+"/", ""), 404, "no such endpoint")
	before := rep.called()
	errorIs(t, "unknown", getWith(t, http.MethodGet, path("nowhere", "2026-10")+"?format=html", "text/html"), 404, "unknown municipality nowhere")
	rep.mu.Lock()
	rep.err = errors.New("clickhouse unreachable")
	rep.mu.Unlock()
	errorIs(t, "failed", getWith(t, http.MethodGet, path("vic", "2026-10")+"?format=csv", ""), 503, "report failed; see the evaluator's log")
	if n := rep.called() - before; n != 2 || before != 2 {
		t.Errorf("%d reports built for refused requests, %d for the others; want 0 and 2", before-2, n)
	}
	resp, err := http.Post(path("vic", "2026-10"), "text/csv", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// The current month is the municipality's: at 23:30 UTC on 30
	// November it is already December in Madrid.
	late := reportServer(t, &fake{}, &fakeReporter{}, 2, time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC))
	if a := getWith(t, http.MethodGet, late.URL+apiv1.ReportPath("vic", "2026-12"), ""); a.code != 200 {
		t.Errorf("December in Madrid while November in UTC: %d %s", a.code, a.body)
	}
	errorIs(t, "next month", getWith(t, http.MethodGet, late.URL+apiv1.ReportPath("vic", "2027-01"), ""), 400, "and 2026-12 (the current month in Europe/Madrid)")

	// Without a reporter the path is not served.
	errorIs(t, "no reporter", get(t, server(t, &fake{}, 2).URL+apiv1.ReportPath("vic", "2026-10")), 404, "no such endpoint")
}

// TestReportsShareTheOnDemandBound holds MaxOnDemand reports: one more
// report, and an ?at= evaluation, are refused at once with 429 and
// Retry-After, the snapshot is still served, and once one ends a new one
// runs.
func TestReportsShareTheOnDemandBound(t *testing.T) {
	rep := &fakeReporter{hold: "2026-10", started: make(chan string, 10), release: make(chan struct{})}
	srv := reportServer(t, &fake{snap: snapshot(map[string]int{"vic": 4})}, rep, 2, now)
	url := srv.URL + apiv1.ReportPath("vic", "2026-10")
	done := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(url + "?format=html")
			if err != nil {
				done <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	<-rep.started
	<-rep.started
	for what, u := range map[string]string{
		"third report":           url,
		"?at= while reports run": srv.URL + "/api/v1/municipalities/vic/assessment?at=2026-11-01T00:00:00Z",
	} {
		a := get(t, u)
		errorIs(t, what, a, 429, "2 on-demand evaluations are running already")
		if a.header.Get("Retry-After") != "5" {
			t.Errorf("%s: Retry-After %q, want 5", what, a.header.Get("Retry-After"))
		}
	}
	if a := get(t, srv.URL+"/api/v1/municipalities/vic/assessment"); a.code != 200 {
		t.Errorf("snapshot while the slots are full: %d", a.code)
	}
	rep.release <- struct{}{}
	if code := <-done; code != 200 {
		t.Errorf("held report: %d", code)
	}
	if a := get(t, srv.URL+apiv1.ReportPath("vic", "2026-09")); a.code != 200 {
		t.Errorf("after one ended: %d %s", a.code, a.body)
	}
	rep.release <- struct{}{}
	if code := <-done; code != 200 {
		t.Errorf("second held report: %d", code)
	}
}
